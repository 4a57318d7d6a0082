import Atomics

/// Request ids: a random per-process prefix and a counter, so they are unique across restarts
/// and cheap (no system call per request).
public enum RequestID {
    private static let prefix: String = {
        var generator = SystemRandomNumberGenerator()
        let value = generator.next() & 0xFFFF_FFFF_FFFF
        let hex = String(value, radix: 16)
        return String(repeating: "0", count: 12 - hex.count) + hex
    }()
    private static let counter = ManagedAtomic<UInt64>(0)

    /// A new id such as `3f9a0c11d2e4-000000000000002a`.
    public static func next() -> String {
        let n = counter.loadThenWrappingIncrement(ordering: .relaxed)
        let hex = String(n, radix: 16)
        return prefix + "-" + String(repeating: "0", count: max(0, 16 - hex.count)) + hex
    }

    /// Whether a client-supplied id may be propagated: 1–128 characters of `A-Z a-z 0-9 - _ . :`.
    public static func isAcceptable(_ id: String) -> Bool {
        let utf8 = id.utf8
        guard !utf8.isEmpty, utf8.count <= 128 else { return false }
        return utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x2D || c == 0x5F || c == 0x2E || c == 0x3A
        }
    }
}
