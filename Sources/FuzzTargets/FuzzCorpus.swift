import Foundation

/// Runs files through a target without libFuzzer: the corpus runner of `APIRecorderFuzz` and
/// `FuzzCorpusTests` use it, so that every committed input is checked by the normal test suite.
public enum FuzzCorpus {
    /// The files of `paths`: a file stands for itself, a folder for every file under it (names
    /// that start with `.` are skipped). Sorted within each folder.
    public static func files(in paths: [String]) -> [String] {
        var result: [String] = []
        for path in paths {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { continue }
            guard isDirectory.boolValue else {
                result.append(path)
                continue
            }
            var found: [String] = []
            let enumerator = FileManager.default.enumerator(atPath: path)
            while let relative = enumerator?.nextObject() as? String {
                let full = "\(path)/\(relative)"
                var isFolder: ObjCBool = false
                let name = (relative as NSString).lastPathComponent
                if !name.hasPrefix("."), FileManager.default.fileExists(atPath: full, isDirectory: &isFolder),
                    !isFolder.boolValue
                {
                    found.append(full)
                }
            }
            result += found.sorted()
        }
        return result
    }

    /// Runs the file at `path` through `target`.
    /// - Returns: the violation, or `nil` when every invariant held.
    /// - Throws: when the file cannot be read.
    public static func run(_ target: FuzzTarget, file path: String) throws -> InvariantViolation? {
        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        // An exact-size copy, as libFuzzer passes inputs.
        let bytes = [UInt8](data)
        return bytes.withUnsafeBytes { buffer -> InvariantViolation? in
            do throws(InvariantViolation) {
                try target.run(buffer)
                return nil
            } catch {
                return error
            }
        }
    }
}
