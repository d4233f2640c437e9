public import Foundation
public import Testing

/// Locates `../shared` beside the package, where the reference vectors and recordings live.
public enum Shared {
    public static let root: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("shared")
    public static var isAvailable: Bool { FileManager.default.fileExists(atPath: root.path) }
    public static let skipMessage: Comment = "../shared (reference vectors and recordings) is absent beside the package"

    public static func lines(_ relativePath: String) throws -> [[UInt8]] {
        let data = try Data(contentsOf: root.appendingPathComponent(relativePath))
        return data.split(separator: UInt8(ascii: "\n")).map(Array.init)
    }
}
