#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// Python's float text and rounding, exactly.
public enum PythonFloat {
    /// Python's `repr(x)`: the shortest digits that read back as `x`, in fixed notation when the
    /// decimal exponent is in -4..<16 (with `.0` for integral values), otherwise as `d.ddde±XX`.
    /// Non-finite values are spelled as `json.dumps` spells them: `NaN`, `Infinity`, `-Infinity`.
    public static func repr(_ value: Double) -> String {
        var bytes: [UInt8] = []
        appendRepr(value, to: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends ``repr(_:)`` of `value` to `bytes`.
    public static func appendRepr(_ value: Double, to bytes: inout [UInt8]) {
        if value.isNaN {
            bytes.append(contentsOf: "NaN".utf8)
            return
        }
        if value.isInfinite {
            bytes.append(contentsOf: (value < 0 ? "-Infinity" : "Infinity").utf8)
            return
        }
        if value == 0 {
            bytes.append(contentsOf: (value.sign == .minus ? "-0.0" : "0.0").utf8)
            return
        }
        // Swift's `description` gives the same shortest, closest digits as Python's repr, but lays
        // them out differently (it switches to exponents at 2^53), so take its digits and exponent.
        var digits: [UInt8] = []
        digits.reserveCapacity(17)
        var exponent = 0
        var negative = false
        var pointSeen = false
        var digitsBeforePoint = 0
        var leadingZeros = 0
        var explicitExponent = 0
        var text = value.description
        text.withUTF8 { utf8 in
            var index = 0
            if utf8[0] == UInt8(ascii: "-") {
                negative = true
                index = 1
            }
            while index < utf8.count {
                let byte = utf8[index]
                if byte == UInt8(ascii: ".") {
                    pointSeen = true
                } else if byte == UInt8(ascii: "e") {
                    var sign = 1
                    index += 1
                    if utf8[index] == UInt8(ascii: "-") {
                        sign = -1
                        index += 1
                    } else if utf8[index] == UInt8(ascii: "+") {
                        index += 1
                    }
                    var magnitude = 0
                    while index < utf8.count {
                        magnitude = magnitude * 10 + Int(utf8[index] - 48)
                        index += 1
                    }
                    explicitExponent = sign * magnitude
                    break
                } else {
                    if digits.isEmpty && byte == UInt8(ascii: "0") {
                        leadingZeros += 1
                    } else {
                        digits.append(byte)
                    }
                    if !pointSeen { digitsBeforePoint += 1 }
                }
                index += 1
            }
        }
        // value = 0.<digits> × 10^(digitsBeforePoint - leadingZeros + explicitExponent)
        exponent = digitsBeforePoint - leadingZeros + explicitExponent - 1
        while digits.count > 1, digits.last == UInt8(ascii: "0") { digits.removeLast() }

        if negative { bytes.append(UInt8(ascii: "-")) }
        if exponent >= -4 && exponent < 16 {
            if exponent >= 0 {
                let integerCount = exponent + 1
                for index in 0..<integerCount {
                    bytes.append(index < digits.count ? digits[index] : UInt8(ascii: "0"))
                }
                bytes.append(UInt8(ascii: "."))
                if digits.count > integerCount {
                    bytes.append(contentsOf: digits[integerCount...])
                } else {
                    bytes.append(UInt8(ascii: "0"))
                }
            } else {
                bytes.append(contentsOf: "0.".utf8)
                for _ in 0..<(-exponent - 1) { bytes.append(UInt8(ascii: "0")) }
                bytes.append(contentsOf: digits)
            }
        } else {
            bytes.append(digits[0])
            if digits.count > 1 {
                bytes.append(UInt8(ascii: "."))
                bytes.append(contentsOf: digits[1...])
            }
            bytes.append(UInt8(ascii: "e"))
            bytes.append(UInt8(ascii: exponent < 0 ? "-" : "+"))
            let magnitude = abs(exponent)
            if magnitude < 10 { bytes.append(UInt8(ascii: "0")) }
            bytes.append(contentsOf: String(magnitude).utf8)
        }
    }

    /// Python's `round(x, 5)`: correctly rounded (half-even on the exact binary value), keeping
    /// the sign of a zero result.
    public static func round5(_ value: Double) -> Double {
        // Doubles this large are integers already, and non-finite values round to themselves.
        guard value.isFinite, value.magnitude < 9_007_199_254_740_992 else { return value }
        return strtod(formatFixed5(value), nil)
    }

    /// C's `%.5f` of `value`, which glibc rounds correctly, as Python's `f"{x:.5f}"` does.
    public static func formatFixed5(_ value: Double) -> String {
        if value.isNaN { return "nan" }
        if value.isInfinite { return value < 0 ? "-inf" : "inf" }
        return withUnsafeTemporaryAllocation(of: CChar.self, capacity: 400) { buffer in
            let count = withVaList([value]) { vsnprintf(buffer.baseAddress, 400, "%.5f", $0) }
            return String(
                decoding: UnsafeRawBufferPointer(start: buffer.baseAddress, count: Int(count)),
                as: UTF8.self
            )
        }
    }
}
