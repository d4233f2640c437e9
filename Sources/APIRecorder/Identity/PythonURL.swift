/// The parts of a URL as Python's `urllib.parse.urlparse` splits them.
///
/// The request hash uses the path of the recorded URL and the check for Bedrock uses its network
/// location, so both must be cut exactly where Python cuts them, odd URLs included
/// (`vertexai:///generate_content`, `;params`, no scheme). Every delimiter is ASCII, so the work
/// is done on UTF-8 bytes.
struct PythonURL: Equatable {
    var scheme = ""
    var netloc = ""
    var path = ""
    var params = ""
    var query = ""
    var fragment = ""

    private static let schemesWithParams: Set<String> = [
        "", "ftp", "hdl", "prospero", "http", "imap", "https", "shttp", "rtsp", "rtsps", "rtspu", "sip", "sips",
        "mms", "sftp", "tel",
    ]

    /// Splits `url` as `urlparse(url)` does (Python 3.11+).
    init(parsing url: String) {
        // Python removes tabs and newlines anywhere, then strips leading C0 controls and spaces.
        var bytes = Array(url.utf8)
        if bytes.contains(where: { $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }) {
            bytes.removeAll { $0 == 0x09 || $0 == 0x0A || $0 == 0x0D }
        }
        var start = 0
        while start < bytes.count, bytes[start] <= 0x20 { start += 1 }
        var end = bytes.count

        func text(_ range: Range<Int>) -> String { String(decoding: bytes[range], as: UTF8.self) }
        func first(_ byte: UInt8, in range: Range<Int>) -> Int? { bytes[range].firstIndex(of: byte) }

        if let colon = first(UInt8(ascii: ":"), in: start..<end), colon > start, Self.isASCIILetter(bytes[start]),
            bytes[start..<colon].allSatisfy(Self.isSchemeCharacter)
        {
            scheme = text(start..<colon).lowercased()
            start = colon + 1
        }
        if end - start >= 2, bytes[start] == UInt8(ascii: "/"), bytes[start + 1] == UInt8(ascii: "/") {
            let netlocStart = start + 2
            let netlocEnd =
                bytes[netlocStart..<end].firstIndex {
                    $0 == UInt8(ascii: "/") || $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "#")
                } ?? end
            netloc = text(netlocStart..<netlocEnd)
            start = netlocEnd
        }
        if let hash = first(UInt8(ascii: "#"), in: start..<end) {
            fragment = text((hash + 1)..<end)
            end = hash
        }
        if let question = first(UInt8(ascii: "?"), in: start..<end) {
            query = text((question + 1)..<end)
            end = question
        }
        if first(UInt8(ascii: ";"), in: start..<end) != nil, Self.schemesWithParams.contains(scheme) {
            // `_splitparams`: the ';' that counts is the first one after the last '/'.
            let searchStart = bytes[start..<end].lastIndex(of: UInt8(ascii: "/")) ?? start
            if let semicolon = first(UInt8(ascii: ";"), in: searchStart..<end) {
                params = text((semicolon + 1)..<end)
                end = semicolon
            }
        }
        path = text(start..<end)
    }

    private static func isASCIILetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20)
    }

    private static func isSchemeCharacter(_ byte: UInt8) -> Bool {
        isASCIILetter(byte) || byte &- 48 < 10 || byte == UInt8(ascii: "+") || byte == UInt8(ascii: "-")
            || byte == UInt8(ascii: ".")
    }
}
