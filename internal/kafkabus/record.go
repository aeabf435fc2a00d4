package kafkabus

import (
	"encoding/json"
	"net/http"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/tpwallet/tpwallet/internal/httpapi"
	"github.com/tpwallet/tpwallet/internal/ledger"
)

// parseCommand reads a command record: its value is the body, its headers the rest.
// Header names are matched without regard to case. reply is where the result goes; bad is
// the answer to a record that cannot be run (a reply-topic header that is no topic name),
// nil otherwise: what else is wrong with a command, SubmitTransfer answers.
func parseCommand(r *kgo.Record, results string) (cmd httpapi.Command, reply string, bad *httpapi.CommandResult) {
	cmd.Body = r.Value
	reply = results
	var replyHeader *string
	for i := range r.Headers {
		h := &r.Headers[i]
		switch {
		case strings.EqualFold(h.Key, HeaderAuthorization):
			cmd.Authorization = string(h.Value)
		case strings.EqualFold(h.Key, HeaderIdempotencyKey):
			cmd.IdempotencyKey = string(h.Value)
		case strings.EqualFold(h.Key, HeaderReplyTopic):
			v := string(h.Value)
			replyHeader = &v
		}
	}
	if replyHeader != nil {
		if !ValidTopic(*replyHeader) {
			return cmd, results, &httpapi.CommandResult{IdempotencyKey: cmd.IdempotencyKey,
				Status: http.StatusBadRequest, Body: problem(ledger.CodeInvalidRequest,
					"the reply-topic header is not a Kafka topic name (1-249 of a-z A-Z 0-9 . _ -); the command was not run")}
		}
		reply = *replyHeader
	}
	return cmd, reply, nil
}

// problem is the RFC 9457 body of a rejection decided here rather than by httpapi.
func problem(code ledger.Code, detail string) []byte {
	status := httpapi.StatusOf(code)
	b, _ := json.Marshal(httpapi.Problem{Type: "https://tpwallet.dev/problems/" + string(code),
		Title: http.StatusText(status), Status: status, Detail: detail, Code: code})
	return b
}

var (
	hdrJSON = []byte("application/json")
)

// resultRecord is the record that answers a command on topic: key and header
// idempotency-key, value the result envelope (httpapi.CommandResult.AppendJSON).
func resultRecord(topic string, res *httpapi.CommandResult) *kgo.Record {
	var key []byte
	if res.IdempotencyKey != "" {
		key = []byte(res.IdempotencyKey)
	}
	return &kgo.Record{
		Topic: topic,
		Key:   key,
		Value: res.AppendJSON(make([]byte, 0, 64+len(res.Body))),
		Headers: []kgo.RecordHeader{
			{Key: HeaderIdempotencyKey, Value: key},
			{Key: "content-type", Value: hdrJSON},
		},
	}
}
