package webhook_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"time"

	"github.com/tpwallet/tpwallet/client/webhook"
)

// A receiver verifies every webhook on its raw body before it parses it, and answers 2xx
// quickly; a webhook-id it has seen before is a retry of an event it already has.
func Example() {
	secret := "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw" // returned once by POST /v1/webhooks
	seen := map[string]bool{}                          // a real receiver keeps this durably
	receive := func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		if err := webhook.Verify(secret, r.Header, body, time.Now(), webhook.DefaultTolerance); err != nil {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		id := r.Header.Get(webhook.HeaderID)
		if !seen[id] {
			seen[id] = true
			fmt.Println("new event", id)
		}
		w.WriteHeader(http.StatusNoContent)
	}

	// What tpwallet sends, twice (a retry), and a forgery.
	body := []byte(`{"specversion":"1.0","id":"12-0","type":"transfer.posted","data":{}}`)
	send := func(body []byte) int {
		now := time.Now()
		sig, _ := webhook.Sign(secret, "12-0", now, []byte(`{"specversion":"1.0","id":"12-0","type":"transfer.posted","data":{}}`))
		r := httptest.NewRequest(http.MethodPost, "/hooks/tpwallet", bytes.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set(webhook.HeaderID, "12-0")
		r.Header.Set(webhook.HeaderTimestamp, strconv.FormatInt(now.Unix(), 10))
		r.Header.Set(webhook.HeaderSignature, sig)
		w := httptest.NewRecorder()
		receive(w, r)
		return w.Code
	}
	fmt.Println(send(body))
	fmt.Println(send(body))
	fmt.Println(send(bytes.Replace(body, []byte("posted"), []byte("voided"), 1)))
	// Output:
	// new event 12-0
	// 204
	// 204
	// 401
}

func ExampleSign() {
	sig, err := webhook.Sign("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
		time.Unix(1614265330, 0), []byte(`{"test": 2432232314}`))
	fmt.Println(sig, err)
	// Output: v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE= <nil>
}
