#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The few file-system calls the store needs, on POSIX directly: whole-file reads, atomic
/// writes, directory listings and `stat`, each reporting errors with the path and errno text.
enum FileSystem {
    /// Identifies one version of a file, to notice when another process replaced it.
    struct Stamp: Equatable {
        var size: Int
        var modifiedSeconds: Int
        var modifiedNanoseconds: Int
        var inode: UInt64
    }

    /// The stamp of a regular file, or `nil` when there is none at `path`.
    static func stamp(_ path: String) -> Stamp? {
        stamp(path, type: S_IFREG)
    }

    /// The stamp of a folder; it changes when names are added or removed.
    static func directoryStamp(_ path: String) -> Stamp? {
        stamp(path, type: S_IFDIR)
    }

    private static func stamp(_ path: String, type: mode_t) -> Stamp? {
        var info = stat()
        guard stat(path, &info) == 0, (info.st_mode & S_IFMT) == type else { return nil }
        #if canImport(Darwin)
        return Stamp(
            size: Int(info.st_size),
            modifiedSeconds: info.st_mtimespec.tv_sec,
            modifiedNanoseconds: info.st_mtimespec.tv_nsec,
            inode: UInt64(info.st_ino)
        )
        #else
        return Stamp(
            size: Int(info.st_size),
            modifiedSeconds: info.st_mtim.tv_sec,
            modifiedNanoseconds: info.st_mtim.tv_nsec,
            inode: UInt64(info.st_ino)
        )
        #endif
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Reads a whole file.
    static func read(_ path: String) throws(StoreError) -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw StoreError.io(path, "cannot open: \(errnoText())") }
        defer { close(descriptor) }
        var bytes: [UInt8] = []
        var info = stat()
        if fstat(descriptor, &info) == 0 { bytes.reserveCapacity(Int(info.st_size)) }
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { posixRead(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw StoreError.io(path, "cannot read: \(errnoText())")
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return bytes
    }

    /// Writes `bytes` to `path` atomically: a temporary file in the same folder, `fsync`, then
    /// `rename` over the target, then `fsync` of the folder. Readers see the old file or the new
    /// one, never a torn one, whatever other writers do at the same time.
    static func writeAtomically(_ bytes: [UInt8], to path: String) throws(StoreError) {
        let folder = parent(of: path)
        try makeDirectories(folder)
        let name = String(path[path.index(after: path.lastIndex(of: "/") ?? path.startIndex)...])
        let temporary = "\(folder)/.\(name).\(getpid()).\(UInt64.random(in: 0...UInt64.max)).tmp"
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw StoreError.io(path, "cannot create a temporary file: \(errnoText())") }
        var written = 0
        var failure: String?
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { buffer in
                posixWrite(descriptor, buffer.baseAddress! + written, buffer.count - written)
            }
            if count < 0 {
                if errno == EINTR { continue }
                failure = "cannot write: \(errnoText())"
                break
            }
            written += count
        }
        if failure == nil, fsync(descriptor) != 0 { failure = "cannot fsync: \(errnoText())" }
        close(descriptor)
        if failure == nil, rename(temporary, path) != 0 { failure = "cannot rename into place: \(errnoText())" }
        if let failure {
            unlink(temporary)
            throw StoreError.io(path, failure)
        }
        let folderDescriptor = open(folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        if folderDescriptor >= 0 {
            _ = fsync(folderDescriptor)
            close(folderDescriptor)
        }
    }

    /// Runs `body` holding an exclusive `flock` on the file at `lockPath` (created if needed), so
    /// that processes sharing a file take turns.
    static func withLock<T>(_ lockPath: String, _ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try makeDirectories(parent(of: lockPath))
        let descriptor = open(lockPath, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else { throw StoreError.io(lockPath, "cannot open the lock file: \(errnoText())") }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            if errno != EINTR { throw StoreError.io(lockPath, "cannot lock: \(errnoText())") }
        }
        defer { flock(descriptor, LOCK_UN) }
        return try body()
    }

    static func remove(_ path: String) throws(StoreError) {
        if unlink(path) != 0 { throw StoreError.io(path, "cannot remove: \(errnoText())") }
    }

    /// `mkdir -p`.
    static func makeDirectories(_ path: String) throws(StoreError) {
        if isDirectory(path) { return }
        let parentPath = parent(of: path)
        if parentPath != path, !parentPath.isEmpty { try makeDirectories(parentPath) }
        if mkdir(path, 0o755) != 0, errno != EEXIST {
            throw StoreError.io(path, "cannot create the folder: \(errnoText())")
        }
    }

    /// The names in a folder (not `.` and `..`); empty when the folder does not exist.
    static func list(_ path: String) -> [String] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// Every regular file under `root` that lies in a folder named `recordings` and ends in `.json`,
    /// sorted by path.
    static func recordingFiles(under root: String) -> [String] {
        filesInRecordingFolders(under: root) { $0.hasSuffix(".json") && !$0.hasPrefix(".") }
    }

    /// Temporary files of interrupted atomic writes (``writeAtomically(_:to:)`` names them
    /// `.<name>.<pid>.<random>.tmp`) in the `recordings` folders under `root`, sorted by path.
    static func temporaryFiles(under root: String) -> [String] {
        filesInRecordingFolders(under: root) { $0.hasPrefix(".") && $0.hasSuffix(".tmp") && $0.contains(".json.") }
    }

    /// The regular files in folders named `recordings` under `root` whose names pass `accept`.
    ///
    /// The entry types come from `readdir` (`d_type`), so a tree of 100,000 recordings is walked
    /// without a `stat` per file; only file systems that leave the type unknown cost one.
    private static func filesInRecordingFolders(under root: String, accept: (String) -> Bool) -> [String] {
        var result: [String] = []
        var pending = [root]
        while let folder = pending.popLast() {
            let inRecordings = folder.hasSuffix("/recordings") || folder == "recordings"
            for (name, type) in entries(folder) {
                let path = folder == "/" ? "/\(name)" : "\(folder)/\(name)"
                let isFolder: Bool
                switch type {
                case .folder: isFolder = true
                case .file: isFolder = false
                case .unknown: isFolder = isDirectory(path)
                }
                if isFolder {
                    if name != ".build" && name != ".git" && !name.hasPrefix(".build") { pending.append(path) }
                } else if inRecordings, accept(name) {
                    result.append(path)
                }
            }
        }
        return result.sorted()
    }

    private enum EntryType { case folder, file, unknown }

    /// The names in a folder with their types as `readdir` knows them.
    private static func entries(_ path: String) -> [(String, EntryType)] {
        guard let directory = opendir(path) else { return [] }
        defer { closedir(directory) }
        var entries: [(String, EntryType)] = []
        while let entry = readdir(directory) {
            let name = withUnsafePointer(to: entry.pointee.d_name) { pointer in
                pointer.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) { String(cString: $0) }
            }
            if name == "." || name == ".." { continue }
            let type: EntryType
            switch Int32(entry.pointee.d_type) {
            case Int32(DT_DIR): type = .folder
            case Int32(DT_REG): type = .file
            case Int32(DT_LNK), Int32(DT_UNKNOWN): type = .unknown
            default: type = .file
            }
            entries.append((name, type))
        }
        return entries
    }

    /// Whether the temporary file at `path` was left by a write that can no longer finish. A
    /// write in progress holds its temporary file open until it renames it (milliseconds); so on
    /// Linux a temporary file that no process has open is abandoned. Elsewhere: its writer's
    /// process (named in the file name) is gone, or it is older than `age` seconds.
    static func isAbandonedTemporaryFile(_ path: String, olderThan age: Int = 600) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        #if os(Linux)
        if let open = isOpenByAnyProcess(device: UInt64(info.st_dev), inode: UInt64(info.st_ino)) { return !open }
        #endif
        let name = path.split(separator: "/").last.map(String.init) ?? path
        let parts = name.split(separator: ".")
        // "", "<name>", "json", "<pid>", "<random>", "tmp" → the pid is third from the end.
        if parts.count >= 3, let pid = Int32(parts[parts.count - 3]), pid > 0, pid != getpid() {
            if kill(pid, 0) != 0, errno == ESRCH { return true }
        }
        #if canImport(Darwin)
        let modified = Int(info.st_mtimespec.tv_sec)
        #else
        let modified = Int(info.st_mtim.tv_sec)
        #endif
        return Int(time(nil)) - modified > age
    }

    #if os(Linux)
    /// Whether any process has the file `(device, inode)` open, from `/proc/<pid>/fd`; `nil` when
    /// `/proc` cannot be read.
    private static func isOpenByAnyProcess(device: UInt64, inode: UInt64) -> Bool? {
        let processes = list("/proc").filter {
            $0.utf8.allSatisfy { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") }
        }
        guard !processes.isEmpty else { return nil }
        for pid in processes {
            for descriptor in list("/proc/\(pid)/fd") {
                var info = stat()
                if stat("/proc/\(pid)/fd/\(descriptor)", &info) == 0, UInt64(info.st_dev) == device,
                    UInt64(info.st_ino) == inode
                {
                    return true
                }
            }
        }
        return false
    }
    #endif

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        if slash == path.startIndex { return "/" }
        return String(path[..<slash])
    }

    static func currentDirectory() -> String {
        guard let pointer = getcwd(nil, 0) else { return "." }
        defer { free(pointer) }
        return String(cString: pointer)
    }

    /// `path` made absolute against the current folder, with `.` and `..` resolved lexically.
    static func absolute(_ path: String) -> String {
        let joined = path.hasPrefix("/") ? path : "\(currentDirectory())/\(path)"
        var parts: [Substring] = []
        for part in joined.split(separator: "/") {
            if part == "." { continue }
            if part == ".." {
                if !parts.isEmpty { parts.removeLast() }
                continue
            }
            parts.append(part)
        }
        return "/" + parts.joined(separator: "/")
    }

    static func errnoText() -> String { String(cString: strerror(errno)) }
}

@inline(__always)
private func posixRead(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}

@inline(__always)
private func posixWrite(_ descriptor: Int32, _ buffer: UnsafeRawPointer, _ count: Int) -> Int {
    write(descriptor, buffer, count)
}
