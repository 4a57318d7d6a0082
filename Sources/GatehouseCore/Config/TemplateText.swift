import Foundation

/// Splits a `${…}` template (a `rewritePattern`, an aggregate call's path) into literal text
/// and references; each template then says what its references mean.
enum TemplateText {
    enum Piece {
        case literal(String)
        case reference(String)
    }

    static func pieces(_ text: String, in what: String) throws(TemplateError) -> [Piece] {
        var pieces: [Piece] = []
        var rest = text[...]
        while let start = rest.range(of: "${") {
            if start.lowerBound > rest.startIndex { pieces.append(.literal(String(rest[..<start.lowerBound]))) }
            guard let close = rest[start.upperBound...].firstIndex(of: "}") else { throw TemplateError("unterminated ${ in \(what)") }
            pieces.append(.reference(String(rest[start.upperBound..<close])))
            rest = rest[rest.index(after: close)...]
        }
        if !rest.isEmpty { pieces.append(.literal(String(rest))) }
        return pieces
    }
}
