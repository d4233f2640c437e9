import Foundation
import PythonJSON
import TestSupport
import Testing

@Suite("Python float text and rounding")
struct FloatTests {
    @Test(arguments: [
        (1e-5, "1e-05"), (0.0001, "0.0001"), (100000.0, "100000.0"), (1e16, "1e+16"),
        (9.5e15, "9500000000000000.0"), (1e15, "1000000000000000.0"),
        (1.2345678901234568e+17, "1.2345678901234568e+17"),
        (Double.leastNonzeroMagnitude, "5e-324"), (1e100, "1e+100"), (123.0, "123.0"), (0.1, "0.1"), (-0.0, "-0.0"),
        (0.0, "0.0"),
        (1.7976931348623157e+308, "1.7976931348623157e+308"), (-2.5e-7, "-2.5e-07"), (1e22, "1e+22"),
        (123456.789, "123456.789"), (0.00012, "0.00012"),
    ])
    func reprMatchesPython(value: Double, expected: String) {
        #expect(PythonFloat.repr(value) == expected)
    }

    @Test(arguments: [
        (0.123456789, 0.12346), (2.675, 2.675), (-0.000001, -0.0), (2.000005, 2.0), (0.000015, 0.00002),
        (0.000005, 0.00001), (0.0000050000001, 0.00001),
        (1e20, 1e20), (1.000005, 1.00001), (123.456785, 123.45678),
    ])
    func round5MatchesPython(value: Double, expected: Double) {
        let rounded = PythonFloat.round5(value)
        #expect(rounded == expected)
        #expect(rounded.sign == expected.sign)
    }

    /// Compares repr and round(x, 5) with the Python on this machine for many random doubles.
    @Test(.enabled(if: Python.isAvailable, "python3 is not on PATH"))
    func randomDoublesAgreeWithPython() throws {
        var generator = SplitMix64(seed: 0x5EED)
        var values: [Double] = []
        while values.count < 20_000 {
            let bits = generator.next()
            let value: Double
            switch values.count % 4 {
            case 0: value = Double(bitPattern: bits)  // any double, all exponents
            case 1: value = Double(Int64(bitPattern: bits) % 10_000_000) / 1_000_000  // short decimals
            case 2: value = Double(bitPattern: bits).truncatingRemainder(dividingBy: 1e6)
            default: value = (Double(bits % 1_000_000_000) + 0.5) / 100_000  // ties at 5 decimals
            }
            if value.isFinite { values.append(value) }
        }
        let input = values.map { String($0.bitPattern) }.joined(separator: "\n")
        let script = """
            import sys, struct
            for line in sys.stdin:
                x = struct.unpack('<d', struct.pack('<Q', int(line)))[0]
                print(repr(x), repr(round(x, 5)))
            """
        let output = try Python.run(script, input: input)
        let lines = output.split(separator: "\n")
        try #require(lines.count == values.count)
        var mismatches = 0
        for (value, line) in zip(values, lines) {
            let parts = line.split(separator: " ")
            let ours = "\(PythonFloat.repr(value)) \(PythonFloat.repr(PythonFloat.round5(value)))"
            if ours != "\(parts[0]) \(parts[1])" {
                mismatches += 1
                if mismatches < 5 { Issue.record("\(value.bitPattern): ours \(ours), Python \(line)") }
            }
        }
        #expect(mismatches == 0)
    }
}

/// A small deterministic random number generator for reproducible test data.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
