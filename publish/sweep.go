package publish

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Swept is what one sweep of an attachment bucket found and removed.
type Swept struct {
	Objects int // complete objects in the bucket
	Orphans int // chunk sets no object references, old enough, purged
	Young   int // chunk sets no object references yet, within the grace period
}

// SweepOrphanChunks purges the chunks of bucket that no object's metadata
// references and whose newest chunk is older than grace. An object store
// writes an object's chunks first and its metadata last, so a process
// killed between the two (kill -9 mid-upload) leaves chunks that nothing
// will ever read or delete until the bucket's max age; a Put in progress
// has the same shape, which is what the grace period (longer than any Put
// takes) protects.
func SweepOrphanChunks(ctx context.Context, js jetstream.JetStream, bucket string, grace time.Duration) (Swept, error) {
	var sw Swept
	obs, err := js.ObjectStore(ctx, bucket)
	if err != nil {
		return sw, fmt.Errorf("sweep %s: object store: %w", bucket, err)
	}
	// The chunk subjects first, then the objects: an object completed in
	// between is then listed, never mistaken for an orphan.
	stream, err := js.Stream(ctx, "OBJ_"+bucket)
	if err != nil {
		return sw, fmt.Errorf("sweep %s: stream: %w", bucket, err)
	}
	prefix := "$O." + bucket + ".C."
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(prefix+">"))
	if err != nil {
		return sw, fmt.Errorf("sweep %s: list chunk subjects: %w", bucket, err)
	}
	referenced := map[string]bool{}
	objs, err := obs.List(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoObjectsFound) {
		return sw, fmt.Errorf("sweep %s: list objects: %w", bucket, err)
	}
	for _, o := range objs {
		referenced[o.NUID] = true
	}
	sw.Objects = len(objs)
	for subj := range info.State.Subjects {
		nuid, ok := strings.CutPrefix(subj, prefix)
		if !ok || referenced[nuid] {
			continue
		}
		last, err := stream.GetLastMsgForSubject(ctx, subj)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // purged meanwhile
		}
		if err != nil {
			return sw, fmt.Errorf("sweep %s: newest chunk of an unreferenced object: %w", bucket, err)
		}
		if time.Since(last.Time) < grace {
			sw.Young++
			continue
		}
		if err := stream.Purge(ctx, jetstream.WithPurgeSubject(subj)); err != nil {
			return sw, fmt.Errorf("sweep %s: purge orphaned chunks: %w", bucket, err)
		}
		sw.Orphans++
	}
	return sw, nil
}
