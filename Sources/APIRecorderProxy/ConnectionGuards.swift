import APIRecorder
import HTTPTypes
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1

/// Hummingbird's HTTP/1 server with the proxy's connection hygiene:
/// - an idle timeout (Hummingbird's own): a connection with no request in progress, or whose
///   request sends nothing, is closed;
/// - a request-header timeout: once a request's first byte has arrived, its headers must be
///   complete within the limit, or the client gets a `408` and the connection is closed (a client
///   sending one header byte a second is otherwise served for ever);
/// - a request head (request line and headers) larger than `maxHeadBytes` answered `431`, and the
///   connection closed, before the responder sees it: nothing of it is read or forwarded;
/// - errors of the HTTP layer (a NUL byte in a header, malformed chunked encoding, both
///   `Content-Length` and `Transfer-Encoding`) answered `400` with a JSON error body in OpenAI's
///   shape, instead of an empty one (headers past the decoder's own limit: `431`).
struct GuardedHTTP1Channel: ServerChildChannel {
    typealias Value = HTTP1Channel.Value

    let responder: HTTPChannelHandler.Responder
    let idleTimeout: Duration?
    let headerTimeout: Duration?
    let maxHeadBytes: Int
    let policy: CallerPolicy

    /// The server builder `buildApplication` uses.
    static func builder(
        idleTimeout: Duration?,
        headerTimeout: Duration?,
        maxHeadBytes: Int,
        policy: CallerPolicy
    ) -> HTTPServerBuilder {
        HTTPServerBuilder { responder in
            GuardedHTTP1Channel(
                responder: responder,
                idleTimeout: idleTimeout,
                headerTimeout: headerTimeout,
                maxHeadBytes: maxHeadBytes,
                policy: policy
            )
        }
    }

    private func channel(
        with handlers: @escaping @autoclosure @Sendable () -> [any RemovableChannelHandler]
    )
        -> HTTP1Channel
    {
        HTTP1Channel(
            responder: responder,
            configuration: .init(additionalChannelHandlers: handlers(), idleTimeout: idleTimeout.map(TimeAmount.init))
        )
    }

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let state = ConnectionState()
        let timeout = headerTimeout.map(TimeAmount.init)
        return self.channel(with: [HTTPPartGuard(state: state, maxHeadBytes: maxHeadBytes, policy: policy)]).setup(
            channel: channel,
            logger: logger
        ).flatMapThrowing { value in
            // Before the conversion to HTTPTypes, which drops an absolute target's authority
            // and all but the first `Host`.
            let codec = try channel.pipeline.syncOperations.handler(type: HTTP1ToHTTPServerCodec.self)
            try channel.pipeline.syncOperations.addHandler(RequestTargetReader(state: state), position: .before(codec))
            if let timeout {
                try channel.pipeline.syncOperations.addHandler(
                    RequestHeadTimer(state: state, timeout: timeout),
                    position: .first
                )
            }
            return value
        }
    }

    func handle(value: Value, logger: Logger) async {
        await channel(with: []).handle(value: value, logger: logger)
    }
}

/// What the two guards of one connection share; used on its event loop only.
final class ConnectionState {
    /// Between requests: the next bytes start a request head.
    var awaitingHead = true
    /// When the first byte of the head being awaited arrived.
    var headStarted: NIODeadline?
    /// A response head has been written and its end has not.
    var responseInProgress = false
    /// The request target of the head being read, as sent (NIOHTTPTypes keeps only its path).
    var target: String?
    /// How many `Host` headers the head being read has.
    var hostHeaders = 0
    /// The pending check of the header clock (at most one per connection, re-armed lazily, so a
    /// keep-alive connection does not schedule a timer per request).
    var headTimer: Scheduled<Void>?
}

extension ConnectionState: @unchecked Sendable {}

/// First in the pipeline, on raw bytes: starts the header clock when a request's first byte
/// arrives, and answers `408` when the head is not complete in time.
final class RequestHeadTimer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let state: ConnectionState
    private let timeout: TimeAmount

    init(state: ConnectionState, timeout: TimeAmount) {
        self.state = state
        self.timeout = timeout
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if state.awaitingHead, state.headStarted == nil {
            let now = NIODeadline.now()
            state.headStarted = now
            if state.headTimer == nil { schedule(at: now + timeout, context: context) }
        }
        context.fireChannelRead(data)
    }

    private func schedule(at deadline: NIODeadline, context: ChannelHandlerContext) {
        let loop = context.eventLoop.assumeIsolated()
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        state.headTimer = loop.scheduleTask(deadline: deadline) { [self] in
            state.headTimer = nil
            guard state.awaitingHead, !state.responseInProgress, let started = state.headStarted else { return }
            if NIODeadline.now() < started + timeout {
                // A later request's head: its clock started after this check was set.
                schedule(at: started + timeout, context: bound.value)
                return
            }
            timedOut(bound.value)
        }
    }

    private func timedOut(_ context: ChannelHandlerContext) {
        let body = HTTPErrorBody.json(
            type: "request_timeout",
            message: "The request's headers did not arrive within the header timeout."
        )
        var buffer = context.channel.allocator.buffer(capacity: body.count + 128)
        buffer.writeString(
            "HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\n"
                + "content-length: \(body.count)\r\nconnection: close\r\n\r\n"
        )
        buffer.writeBytes(body)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(NIOAny(buffer)).whenComplete { _ in bound.value.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        state.headTimer?.cancel()
        state.headTimer = nil
        context.fireChannelInactive()
    }
}

/// Before the conversion to HTTPTypes: notes what it loses of a request head, the target as sent
/// (an absolute-form target's authority) and any second `Host`, for ``HTTPPartGuard`` to judge.
final class RequestTargetReader: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart

    private let state: ConnectionState

    init(state: ConnectionState) {
        self.state = state
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) {
            state.target = head.uri
            state.hostHeaders = head.headers["Host"].count
        }
        context.fireChannelRead(data)
    }
}

/// After HTTP decoding: stops the header clock when a head is complete, refuses heads over the
/// limit with a JSON `431`, tracks responses, and answers the decoder's errors with a JSON `400`.
final class HTTPPartGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let state: ConnectionState
    private let maxHeadBytes: Int
    private let policy: CallerPolicy
    /// A head was refused: the rest of the connection's input is dropped until it closes.
    private var refusing = false

    init(state: ConnectionState, maxHeadBytes: Int, policy: CallerPolicy) {
        self.state = state
        self.maxHeadBytes = maxHeadBytes
        self.policy = policy
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if refusing { return }
        if case .head(let head) = unwrapInboundIn(data) {
            state.awaitingHead = false
            state.headStarted = nil
            let size = Self.size(of: head)
            if size > maxHeadBytes {
                refusing = true
                answer(
                    status: .requestHeaderFieldsTooLarge,
                    type: "request_header_fields_too_large",
                    message: "The request's head (request line and headers) is \(size) bytes, over the proxy's "
                        + "limit of \(maxHeadBytes) (--max-header-bytes); nothing was forwarded.",
                    context: context
                )
                return
            }
            if state.hostHeaders > 1 {
                refusing = true
                answer(
                    status: .badRequest,
                    type: "invalid_request_error",
                    message: "The request has more than one Host header (RFC 9112 asks a server to refuse it).",
                    context: context
                )
                return
            }
            if let target = state.target, let refusal = policy.refusal(ofTarget: target) {
                refusing = true
                answer(status: .forbidden, type: refusal.type, message: refusal.message, context: context)
                return
            }
        }
        context.fireChannelRead(data)
    }

    /// The head's size as HTTP/1.1 sends it: the request line, and each header's line.
    static func size(of head: HTTPRequest) -> Int {
        var size = head.method.rawValue.utf8.count + (head.path?.utf8.count ?? 0) + " HTTP/1.1\r\n".utf8.count + 2
        if let authority = head.authority { size += "host: \r\n".utf8.count + authority.utf8.count }
        for field in head.headerFields { size += field.name.rawName.utf8.count + field.value.utf8.count + 4 }
        return size
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch unwrapOutboundIn(data) {
        case .head: state.responseInProgress = true
        case .body: break
        case .end:
            state.responseInProgress = false
            state.awaitingHead = true
            state.headStarted = nil
        }
        context.write(data, promise: promise)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard let parserError = error as? HTTPParserError else {
            context.fireErrorCaught(error)
            return
        }
        state.awaitingHead = false
        // A request whose body was being read must fail, not end: passed on, the error makes its
        // body stream throw, so a body cut short is never taken for a whole one and forwarded.
        defer { context.fireErrorCaught(parserError) }
        // Answered here, and the connection closed: the request cannot be read any further.
        guard !state.responseInProgress else {
            context.close(promise: nil)
            return
        }
        if case .headerOverflow = parserError {
            answer(
                status: .requestHeaderFieldsTooLarge,
                type: "request_header_fields_too_large",
                message:
                    "The request's headers are larger than the proxy accepts (--max-header-bytes \(maxHeadBytes)); "
                    + "nothing was forwarded.",
                context: context
            )
            return
        }
        answer(
            status: .badRequest,
            type: "invalid_request_error",
            message: HTTPErrorBody.explain(parserError),
            context: context
        )
    }

    /// Answers with a JSON error, then closes the connection: its input cannot be read any further.
    private func answer(status: HTTPResponse.Status, type: String, message: String, context: ChannelHandlerContext) {
        let body = HTTPErrorBody.json(status: status.code, type: type, message: message)
        var head = HTTPResponse(status: status)
        head.headerFields[.contentType] = "application/json"
        head.headerFields[.contentLength] = String(body.count)
        head.headerFields[.connection] = "close"
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(context.channel.allocator.buffer(bytes: body))), promise: nil)
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in bound.value.close(promise: nil) }
    }
}

/// The JSON bodies of the errors the HTTP layer answers itself.
enum HTTPErrorBody {
    /// OpenAI's error shape: no route (and so no provider) is known when HTTP itself fails.
    static func json(status: Int = 400, type: String, message: String) -> [UInt8] {
        AdapterSelection.openAI.errorBody(ExchangeError(status: status, type: type, message: message))
    }

    /// What a parser error means, in words.
    static func explain(_ error: HTTPParserError) -> String {
        let reason: String
        switch error {
        case .headerOverflow: reason = "its headers are too large"
        case .invalidHeaderToken:
            reason = "a header holds a character HTTP does not allow (a NUL byte, a control character)"
        case .unexpectedContentLength, .invalidContentLength:
            reason = "its Content-Length is invalid, or comes with Transfer-Encoding"
        case .invalidChunkSize: reason = "its chunked encoding is malformed"
        case .invalidMethod: reason = "its method is not valid"
        case .invalidURL: reason = "its target is not a valid URL"
        case .invalidVersion: reason = "its HTTP version is not valid"
        default: reason = "\(error)"
        }
        return "The request is not valid HTTP/1.1: \(reason)."
    }
}
