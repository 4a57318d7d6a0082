import GatehouseCore
import NIOCore

extension UpstreamClient {
    /// Why a fetch failed, in words for the script that made it (the URL is the script's own).
    public struct FetchError: Error, Sendable {
        public let message: String
        /// What the failure says about the upstream (for breakers and retries on groups).
        public var fault: Fault = .none

        public enum Fault: Sendable {
            /// Not the upstream's doing (a bad URL, an answer over the size limit).
            case none
            /// Not reached, or the connection broke before an answer: safe to retry.
            case unreachable
            /// No answer in time: counts against the upstream, not retried.
            case timedOut
            /// An answer that is not valid HTTP: counts against the upstream, not retried.
            case invalid
        }
    }

    /// One whole exchange for `http.fetch`, on the same pools as forwarding: the response with
    /// its body in memory (at most `maxBodyBytes`), or why not. The response timeout is the
    /// call's timeout, so the exchange (and its connection) ends by then.
    public func fetch(_ request: Request, timeout: Duration, maxBodyBytes: Int) async -> Result<Response, FetchError> {
        let url = request.url
        do {
            var response = try await engine.execute(request, responseTimeout: TimeAmount(timeout))
            switch response.body {
            case .empty:
                break
            case .buffered(let buffer):
                guard buffer.readableBytes <= maxBodyBytes else { throw BodyTooLarge(limit: maxBodyBytes) }
            case .stream(let stream):
                let body = try await stream.collect(limit: maxBodyBytes)
                response.body = body.readableBytes == 0 ? .empty : .buffered(body)
            }
            response.headers[.transferEncoding] = nil
            response.headers[.contentLength] = nil
            return .success(response)
        } catch is BodyTooLarge {
            return .failure(FetchError(message: "the response of \(url) exceeds \(maxBodyBytes) bytes"))
        } catch let error as UpstreamError {
            switch error {
            case .invalidResponse(let detail):
                return .failure(FetchError(message: "\(url) answered with an invalid \(detail.hasPrefix("status ") ? "status (\(detail.dropFirst(7)))" : "response: \(detail)")", fault: .invalid))
            case .invalidURL:
                return .failure(FetchError(message: "\(url) is not an http or https URL with a host"))
            case .shuttingDown, .poolExhausted:
                // The gateway's own state, not the upstream's.
                return .failure(FetchError(message: "\(url) failed: \(error)"))
            default:
                if error.isTimeout { return .failure(FetchError(message: "\(url) did not answer within \(timeout)", fault: .timedOut)) }
                return .failure(FetchError(message: "\(url) failed: \(error)", fault: .unreachable))
            }
        } catch {
            return .failure(FetchError(message: "\(url) failed: \(error)", fault: .unreachable))
        }
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        let (seconds, attoseconds) = duration.components
        // A timeout beyond a century is no timeout; clamped so the nanoseconds cannot overflow.
        guard seconds < 3_000_000_000 else { self = .hours(24 * 365 * 100); return }
        self = .nanoseconds(max(0, seconds) * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
