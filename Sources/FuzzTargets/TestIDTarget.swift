import APIRecorder

/// The root of the store that the test-id target asks for folders (nothing is read or written).
private let fuzzRoot = "/fuzz-root"
private let fuzzStore = RecordingStore(root: fuzzRoot)

/// The test-id rules: `RecordingLayout.relativeDirectory(forTestID:)` and
/// `RecordingStore.directory(forTestID:)`, on the input as text (invalid UTF-8 replaced, as a
/// header or a JSON string would arrive).
///
/// For any input, nothing crashes, and an accepted id never leads outside the root. Paths are
/// checked as the file system sees them, byte by byte and with `/` as the only separator:
/// - the relative folder has no NUL byte, does not start with `/` or `\`, has no `..` component
///   (nor a `..` between backslashes, which the rules also refuse), ends in `recordings`, and no
///   folder name in it is longer than 255 bytes;
/// - the store's folder is the fallback folder (an id without `::`), or the root, `/` and that
///   relative folder, which resolved lexically stays under the root;
/// - the store refuses every id the layout refuses, and accepts every id the layout accepts unless
///   the path would be too long.
public func fuzzTestID(_ data: UnsafeRawBufferPointer) throws(InvariantViolation) {
    let testID = String(decoding: data.fuzzBytes, as: UTF8.self)
    let relative: String??
    do {
        relative = try RecordingLayout.relativeDirectory(forTestID: testID)
    } catch {
        relative = nil
    }
    let folder: String?
    do {
        folder = try fuzzStore.directory(forTestID: testID)
    } catch {
        folder = nil
    }

    switch relative {
    case nil:
        if let folder {
            throw InvariantViolation("the store gave \(quoted(folder)) for an id the layout refuses: \(quoted(testID))")
        }
    case .some(nil):
        guard folder == fuzzStore.fallbackDirectory else {
            throw InvariantViolation(
                "an id without a file part gave \(folder.map(quoted) ?? "an error"), not the fallback folder: "
                    + quoted(testID)
            )
        }
    case .some(let relative?):
        try checkRelativeFolder(relative, of: testID)
        guard let folder else {
            let longest = fuzzRoot.utf8.count + 1 + relative.utf8.count + 1 + 85
            if longest > RecordingLayout.maximumPathBytes { return }
            throw InvariantViolation("the store refused an id the layout accepts: \(quoted(testID))")
        }
        guard folder.utf8.elementsEqual("\(fuzzRoot)/\(relative)".utf8) else {
            throw InvariantViolation("the store's folder \(quoted(folder)) is not the root and \(quoted(relative))")
        }
        guard let resolved = resolveLexically(Array(folder.utf8)),
            resolved.starts(with: Array("\(fuzzRoot)/".utf8))
        else {
            throw InvariantViolation("the store's folder \(quoted(folder)) leaves the root, for \(quoted(testID))")
        }
    }
}

/// Checks a folder that the layout accepted, byte by byte.
private func checkRelativeFolder(_ relative: String, of testID: String) throws(InvariantViolation) {
    let bytes = Array(relative.utf8)
    func fail(_ reason: String) -> InvariantViolation {
        InvariantViolation("the accepted id \(quoted(testID)) gives the folder \(quoted(relative)), which \(reason)")
    }
    if bytes.contains(0) { throw fail("has a NUL byte") }
    if bytes.first == UInt8(ascii: "/") || bytes.first == UInt8(ascii: "\\") { throw fail("is absolute") }
    let components = bytes.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
    for component in components {
        if component.elementsEqual("..".utf8) { throw fail("has a '..' component") }
        if component.split(separator: UInt8(ascii: "\\")).contains(where: { $0.elementsEqual("..".utf8) }) {
            throw fail("has a '..' between backslashes")
        }
        if component.count > RecordingLayout.maximumFolderNameBytes {
            throw fail("has a folder name of \(component.count) bytes")
        }
    }
    guard components.last?.elementsEqual("recordings".utf8) == true else { throw fail("does not end in recordings") }
}

/// `path` with `.` and `..` components resolved as the file system would (without symbolic links),
/// or `nil` when a `..` climbs above `/`.
private func resolveLexically(_ path: [UInt8]) -> [UInt8]? {
    var kept: [ArraySlice<UInt8>] = []
    for component in path.split(separator: UInt8(ascii: "/")) {
        if component.elementsEqual(".".utf8) { continue }
        if component.elementsEqual("..".utf8) {
            if kept.isEmpty { return nil }
            kept.removeLast()
        } else {
            kept.append(component)
        }
    }
    var result: [UInt8] = []
    for component in kept {
        result.append(UInt8(ascii: "/"))
        result.append(contentsOf: component)
    }
    return result.isEmpty ? [UInt8(ascii: "/")] : result
}

private func quoted(_ text: String) -> String { "\"\(excerpt(text.utf8))\"" }
