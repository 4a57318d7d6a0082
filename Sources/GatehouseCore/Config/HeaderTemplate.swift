/// A header value of `set-headers-inbound` / `set-headers-outbound`: literal text and `${…}`
/// references, as in `rewritePattern` (`context.custom.*`, `params.*`, `query.*`, `headers.*`,
/// `env.*`, `request.method`, `request.path`) plus `user.*` (a dotted path into `request.user`,
/// such as `user.sub` or `user.data.tier`).
public struct HeaderTemplate: Sendable, Equatable {
    public enum Part: Sendable, Equatable {
        case literal(String)
        /// A reference every `${…}` template shares (`RewritePattern.Part`, never `.literal`).
        case request(RewritePattern.Part)
        /// `user.*`: a dotted path into `request.user`.
        case user([String])
    }

    public let text: String
    public let parts: [Part]

    public init(_ text: String) throws(TemplateError) {
        var parts: [Part] = []
        for piece in try TemplateText.pieces(text, in: "a header value") {
            switch piece {
            case .literal(let s): parts.append(.literal(s))
            case .reference(let r): parts.append(try Self.part(for: r))
            }
        }
        self.text = text
        self.parts = parts
    }

    private static func part(for reference: String) throws(TemplateError) -> Part {
        if reference.hasPrefix("user.") {
            let path = reference.dropFirst(5).split(separator: ".", omittingEmptySubsequences: false).map(String.init)
            guard !path.contains(where: \.isEmpty) else { throw TemplateError("${\(reference)}: an empty field in the user path") }
            return .user(path)
        }
        guard let part = RewritePattern.requestPart(reference) else {
            throw TemplateError("unknown reference ${\(reference)} in a header value (use context.custom.*, params.*, query.*, headers.*, env.*, user.*, request.method or request.path)")
        }
        return .request(part)
    }

    /// The `context.custom` names the template reads (fetched from Lua before rendering).
    public var customNames: [String] {
        parts.compactMap { if case .request(.contextCustom(let n)) = $0 { n } else { nil } }
    }

    /// The value, each reference replaced by what `value` gives (nothing for nil). Control
    /// characters (CR, LF, NUL …) that a reference brings become spaces: a value from a client
    /// or a script can never end the header or start another.
    public func render(_ value: (Part) -> String?) -> String {
        var out = ""
        for part in parts {
            if case .literal(let text) = part {
                out += text
            } else if let inserted = value(part) {
                out += String(String.UnicodeScalarView(inserted.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
            }
        }
        return out
    }
}
