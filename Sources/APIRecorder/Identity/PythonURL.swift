/// The parts of a URL as Python's `urllib.parse.urlparse` splits them.
///
/// The request hash uses the path of the recorded URL and the check for Bedrock uses its network
/// location, so both must be cut exactly where Python cuts them, odd URLs included
/// (`vertexai:///generate_content`, `;params`, no scheme).
struct PythonURL: Equatable {
    var scheme = ""
    var netloc = ""
    var path = ""
    var params = ""
    var query = ""
    var fragment = ""

    private static let schemeCharacters = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+-.")
    private static let schemesWithParams: Set<String> = [
        "", "ftp", "hdl", "prospero", "http", "imap", "https", "shttp", "rtsp", "rtsps", "rtspu", "sip", "sips",
        "mms", "sftp", "tel",
    ]

    /// Splits `url` as `urlparse(url)` does (Python 3.11+).
    init(parsing url: String) {
        // Python removes tabs and newlines anywhere, then strips leading C0 controls and spaces.
        var rest = Substring(url.filter { $0 != "\t" && $0 != "\r" && $0 != "\n" && $0 != "\r\n" })
        while let first = rest.unicodeScalars.first, first.value <= 0x20 {
            rest = Substring(rest.unicodeScalars.dropFirst())
        }
        if let colon = rest.firstIndex(of: ":"), colon != rest.startIndex,
            let first = rest.first, first.isASCII, first.isLetter,
            rest[..<colon].allSatisfy({ Self.schemeCharacters.contains($0) })
        {
            scheme = rest[..<colon].lowercased()
            rest = rest[rest.index(after: colon)...]
        }
        if rest.hasPrefix("//") {
            let afterSlashes = rest.index(rest.startIndex, offsetBy: 2)
            let end = rest[afterSlashes...].firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
            netloc = String(rest[afterSlashes..<end])
            rest = rest[end...]
        }
        if let hash = rest.firstIndex(of: "#") {
            fragment = String(rest[rest.index(after: hash)...])
            rest = rest[..<hash]
        }
        if let question = rest.firstIndex(of: "?") {
            query = String(rest[rest.index(after: question)...])
            rest = rest[..<question]
        }
        if Self.schemesWithParams.contains(scheme), rest.contains(";") {
            // `_splitparams`: the ';' that counts is the first one after the last '/'.
            let searchStart = rest.lastIndex(of: "/") ?? rest.startIndex
            if let semicolon = rest[searchStart...].firstIndex(of: ";") {
                params = String(rest[rest.index(after: semicolon)...])
                rest = rest[..<semicolon]
            }
        }
        path = String(rest)
    }
}
