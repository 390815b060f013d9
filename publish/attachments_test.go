package publish

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"github.com/triaged/triaged/bus"
	"strings"
	"testing"
	"time"
)

func TestAttachmentsAreStoredOnceAndVerified(t *testing.T) {
	p := newPub(t, true)
	ctx := context.Background()
	att, err := p.EnsureBucket(ctx, bus.StreamSpec{Name: "HM", Replicas: 1, MaxAge: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	data := []byte(strings.Repeat("heatmap ", 40000)) // several chunks
	a, err := att.Put(ctx, "k/cam-overlay.png", "image/png", data)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if a.Bucket != "HM" || a.Size != int64(len(data)) || a.SHA256 != hex.EncodeToString(sum[:]) || a.ContentType != "image/png" {
		t.Fatalf("reference %+v", a)
	}
	// A film processed again must not replace what an alert points at.
	again, err := att.Put(ctx, "k/cam-overlay.png", "image/png", []byte("other bytes"))
	if err != nil || again != a {
		t.Fatalf("second put: %+v %v, want the first object kept", again, err)
	}
	got, err := FetchAttachment(ctx, p.JS, a)
	if err != nil || string(got) != string(data) {
		t.Fatalf("fetch: %v", err)
	}
	bad := a
	bad.SHA256 = strings.Repeat("0", 64)
	if _, err := FetchAttachment(ctx, p.JS, bad); err == nil {
		t.Fatal("an attachment whose sha256 does not match was accepted")
	}
}

func TestOperatorManagedBucketMustExist(t *testing.T) {
	p := newPub(t, false)
	if _, err := p.EnsureBucket(context.Background(), bus.StreamSpec{Name: "HM", Replicas: 1}); err == nil {
		t.Fatal("missing bucket accepted")
	}
}

func TestUpdatesAreDeduplicated(t *testing.T) {
	p := newPub(t, true)
	ctx := context.Background()
	if err := p.EnsureStreams(ctx); err != nil {
		t.Fatal(err)
	}
	alert := AlertID("1.2.3", "ms-x", "critical")
	u := &Update{Schema: UpdateSchema, Kind: "update", MessageID: UpdateID(alert, "occlusion"), AlertID: alert, Priority: "critical"}
	first, err := p.PublishUpdate(ctx, u)
	if err != nil || first.Subject != "triaged.alert.update" || first.Stream != "A" || first.Duplicate {
		t.Fatalf("first: %+v %v", first, err)
	}
	again, err := p.PublishUpdate(ctx, u)
	if err != nil || !again.Duplicate {
		t.Fatalf("again: %+v %v", again, err)
	}
}

func TestAttachmentKeyHidesTheUID(t *testing.T) {
	k := AttachmentKey(ResultID("1.2.840.113619.2.55", "ms-x"))
	if strings.Contains(k, "1.2.840") || len(k) != 32 || k != AttachmentKey(ResultID("1.2.840.113619.2.55", "ms-x")) ||
		k == AttachmentKey(ResultID("1.2.840.113619.2.55", "ms-y")) {
		t.Fatalf("key %q", k)
	}
}
