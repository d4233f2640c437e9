import APIRecorder
import Testing

/// The shapes `api-recorder drift` compares: paths with list items merged, kinds of value, event order.
@Suite("Response shapes")
struct ResponseShapeTests {
    private let recorded: JSONValue = [
        "id": "x", "created": 1,
        "choices": [["message": ["content": "hi", "refusal": .null]], ["message": ["content": "yo"]]],
        "usage": ["total_tokens": 3],
    ]

    @Test func valuesDoNotMatterButPathsAndKindsDo() throws {
        let other: JSONValue = [
            "id": "y", "created": 2.5, "choices": [["message": ["content": "other words", "refusal": "no"]]],
            "usage": ["total_tokens": 9],
        ]
        #expect(ResponseShape(status: 200, body: other).drift(from: ResponseShape(status: 200, body: recorded)).isEmpty)
    }

    @Test func addedRemovedAndChangedPathsAreNamedAtTheirTop() {
        let live: JSONValue = [
            "id": 7, "created": 1, "choices": [["message": ["content": "hi", "audio": ["data": "..."]]]],
            "service_tier": "default",
        ]
        let drift = ResponseShape(status: 500, body: live).drift(from: ResponseShape(status: 200, body: recorded))
        #expect(drift.added == ["choices[].message.audio", "service_tier"])
        #expect(drift.removed == ["choices[].message.refusal", "usage"])
        #expect(drift.changed.map(\.path) == ["id"])
        #expect(
            drift.description
                == "status 200 -> 500; added choices[].message.audio, service_tier; removed choices[].message.refusal, "
                + "usage; id changed from string to number"
        )
    }

    @Test func streamsCompareTheirEventTypesInOrder() {
        let lines = [
            "event: message_start", #"data: {"message": {"id": "m"}}"#, "", "event: content_block_delta",
            #"data: {"type": "content_block_delta", "delta": {"text": "a"}}"#, "",
            #"data: {"type": "content_block_delta", "delta": {"text": "b"}}"#, "", "data: [DONE]", "",
        ]
        let events = ResponseShape.serverSentEvents(lines: lines)
        #expect(events.count == 3 && events[0]["type"] == "message_start")
        let shape = ResponseShape(status: 200, events: events)
        #expect(shape.eventTypes == ["message_start", "content_block_delta"])
        let reordered = ResponseShape(status: 200, events: [events[1], events[0]])
        #expect(reordered.drift(from: shape).events?.live == ["content_block_delta", "message_start"])
    }
}
