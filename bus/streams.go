package bus

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// StreamSpec is how the configuration sizes one stream or bucket.
type StreamSpec struct {
	Name            string
	Replicas        int
	MaxAge          time.Duration
	DuplicateWindow time.Duration
	Memory          bool
}

func (s StreamSpec) storage() jetstream.StorageType {
	if s.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

// Stream is a stream the daemon uses: its spec, the subjects it must
// capture, and the policies the daemon relies on.
type Stream struct {
	Spec        StreamSpec
	Subjects    []string
	Description string
	// WorkQueue: a message leaves once acknowledged (the intake); otherwise
	// messages are kept by limits (the record).
	WorkQueue bool
	// DiscardNew: a full stream refuses new messages instead of dropping
	// the oldest (intake and dead letters: never drop unprocessed work).
	DiscardNew bool
	// NeedDuplicates: an operator-managed stream must have a duplicate
	// window, or re-processed films would be published twice.
	NeedDuplicates bool
}

// EnsureStream creates or updates the stream (manage), or checks that an
// operator-managed one exists and captures every subject the daemon uses:
// an operator's wildcard subject (triaged.> or triaged.ingest.*) counts.
func EnsureStream(ctx context.Context, js jetstream.JetStream, s Stream, manage bool) error {
	if manage {
		ret, disc := jetstream.LimitsPolicy, jetstream.DiscardOld
		if s.WorkQueue {
			ret = jetstream.WorkQueuePolicy
		}
		if s.DiscardNew {
			disc = jetstream.DiscardNew
		}
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
			Name:        s.Spec.Name,
			Description: s.Description,
			Subjects:    s.Subjects,
			Retention:   ret,
			Discard:     disc,
			Storage:     s.Spec.storage(),
			Replicas:    s.Spec.Replicas,
			MaxAge:      s.Spec.MaxAge,
			Duplicates:  s.Spec.DuplicateWindow,
		})
		if err != nil {
			return fmt.Errorf("create or update stream %s: %w", s.Spec.Name, err)
		}
		return nil
	}
	st, err := js.Stream(ctx, s.Spec.Name)
	if err != nil {
		return fmt.Errorf("stream %s (nats.manage_streams is off, so it must exist): %w", s.Spec.Name, err)
	}
	have := st.CachedInfo().Config
	for _, subj := range s.Subjects {
		if !slices.ContainsFunc(have.Subjects, func(h string) bool { return SubjectCovers(h, subj) }) {
			return fmt.Errorf("stream %s does not capture subject %s (it has %v)", s.Spec.Name, subj, have.Subjects)
		}
	}
	if s.NeedDuplicates && have.Duplicates <= 0 {
		return fmt.Errorf("stream %s has no duplicate window; re-processed films would be published twice", s.Spec.Name)
	}
	return nil
}

// EnsureObjectStore creates or updates a bucket (manage), or opens an
// operator-managed one.
func EnsureObjectStore(ctx context.Context, js jetstream.JetStream, spec StreamSpec, description string, manage bool) (jetstream.ObjectStore, error) {
	if !manage {
		obs, err := js.ObjectStore(ctx, spec.Name)
		if err != nil {
			return nil, fmt.Errorf("object store %s (nats.manage_streams is off, so it must exist): %w", spec.Name, err)
		}
		return obs, nil
	}
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{
		Bucket:      spec.Name,
		Description: description,
		TTL:         spec.MaxAge,
		Storage:     spec.storage(),
		Replicas:    spec.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("create or update object store %s: %w", spec.Name, err)
	}
	return obs, nil
}

// SubjectCovers reports whether stream subject filter f matches every
// subject that s matches (s may itself hold wildcards).
func SubjectCovers(f, s string) bool {
	ft, st := strings.Split(f, "."), strings.Split(s, ".")
	for i, t := range ft {
		if t == ">" {
			return i < len(st)
		}
		if i >= len(st) || (t != "*" && t != st[i]) || (t == "*" && st[i] == ">") {
			return false
		}
	}
	return len(ft) == len(st)
}
