package jetstream

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"

	natsjs "github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/ingest"
)

// leaderHasObject asks the object bucket's stream leader whether the
// object's metadata record exists and is not a deletion marker.
//
// Why: an object store bucket allows direct gets, and nats.go reads an
// object's metadata (ObjectStore.GetInfo, and Get through it) with a direct
// get that any replica may answer. A replica that is catching up, after its
// node restarted, answers "not found" for an object the submitter has just
// stored; taken at its word, a good film would be dead-lettered as
// object_missing (seen in the fleet test: one film of 326, right after a
// NATS node came back). The leader's STREAM.MSG.GET is authoritative, so
// only its "not found" makes a film's object missing.
//
// The subject and encoding of the metadata record follow the object store
// layout nats.go writes ($O.<bucket>.M.<base64url(name)>, stream
// OBJ_<bucket>); a change there fails this check loudly (an error, so the
// film is retried) rather than silently.
func leaderHasObject(ctx context.Context, js natsjs.JetStream, bucket, name string) (bool, error) {
	prefix := js.Options().APIPrefix
	if prefix == "" {
		prefix = natsjs.DefaultAPIPrefix
	}
	if prefix[len(prefix)-1] != '.' {
		prefix += "."
	}
	req, err := json.Marshal(map[string]string{
		"last_by_subj": "$O." + bucket + ".M." + base64.URLEncoding.EncodeToString([]byte(name)),
	})
	if err != nil {
		return false, err
	}
	msg, err := js.Conn().RequestWithContext(ctx, prefix+"STREAM.MSG.GET.OBJ_"+bucket, req)
	if err != nil {
		return false, fmt.Errorf("ask the leader of bucket %s for object %q: %w", bucket, name, err)
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Data []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &resp); err != nil {
		return false, fmt.Errorf("leader of bucket %s: undecodable answer: %w", bucket, err)
	}
	if resp.Error != nil {
		if resp.Error.ErrCode == int(natsjs.JSErrCodeMessageNotFound) {
			return false, nil
		}
		return false, fmt.Errorf("leader of bucket %s: %s (code %d/%d)", bucket, resp.Error.Description, resp.Error.Code, resp.Error.ErrCode)
	}
	if resp.Message == nil {
		return false, fmt.Errorf("leader of bucket %s: answer without a message", bucket)
	}
	var meta struct {
		Deleted bool `json:"deleted"`
	}
	if err := json.Unmarshal(resp.Message.Data, &meta); err != nil {
		return false, fmt.Errorf("leader of bucket %s: metadata of object %q: %w", bucket, name, err)
	}
	return !meta.Deleted, nil
}

// missingOrLagging turns a "not found" from a possibly lagging replica into
// the film's verdict: object_missing only when the leader agrees, otherwise
// a retry.
func (m *Message) missingOrLagging(ctx context.Context, name, what string) error {
	has, err := leaderHasObject(ctx, m.s.o.JS, m.s.o.ObjectBucket, name)
	switch {
	case err != nil:
		return &ingest.TransientError{Err: fmt.Errorf("object %q: a replica says it is missing and the leader could not confirm: %w", name, err)}
	case has:
		return &ingest.TransientError{Err: fmt.Errorf("object %q: a replica of bucket %s has not caught up yet", name, m.s.o.ObjectBucket)}
	}
	return &ingest.OpenError{Code: "object_missing", Err: fmt.Errorf("object %q %s", name, what)}
}
