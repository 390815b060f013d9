package worklist

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/triaged/triaged/publish"
)

// follow replays one stream from where the index's window starts and then
// keeps applying what arrives, until ctx ends. An ordered consumer is
// ephemeral and read-only: any number of daemons can follow the same
// streams, and none of them changes what the deliveries see.
func (s *Server) follow(ctx context.Context, stream string, filters []string, window int, caughtUp func()) {
	for attempt := 0; ctx.Err() == nil; attempt++ {
		err := s.followOnce(ctx, stream, filters, window, caughtUp)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn().Err(err).Str("stream", stream).Msg("worklist: following the stream failed; retrying")
		select {
		case <-ctx.Done():
			return
		case <-time.After(min(time.Duration(attempt+1)*time.Second, 10*time.Second)):
		}
	}
}

func (s *Server) followOnce(ctx context.Context, stream string, filters []string, window int, caughtUp func()) error {
	st, err := s.js.Stream(ctx, stream)
	if err != nil {
		return fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return fmt.Errorf("stream %s info: %w", stream, err)
	}
	// A stopped daemon's consumers go soon; an ordered consumer that misses
	// heartbeats recreates itself anyway.
	occ := jetstream.OrderedConsumerConfig{FilterSubjects: filters, DeliverPolicy: jetstream.DeliverAllPolicy, InactiveThreshold: time.Minute}
	// Only the newest part of the stream can be held, so only that part is
	// replayed: the start costs the window, not the stream's retention.
	if n := info.State.Msgs; n > uint64(window) {
		occ.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		occ.OptStartSeq = info.State.LastSeq - uint64(window) + 1
	}
	cons, err := st.OrderedConsumer(ctx, occ)
	if err != nil {
		return fmt.Errorf("ordered consumer on %s: %w", stream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(512))
	if err != nil {
		return fmt.Errorf("consume %s: %w", stream, err)
	}
	stop := context.AfterFunc(ctx, it.Stop)
	defer stop()
	defer it.Stop()
	ci, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("consumer info on %s: %w", stream, err)
	}
	// Nothing to replay; otherwise the last replayed message says so.
	if ci.NumPending == 0 && ci.Delivered.Consumer == 0 {
		caughtUp()
	}
	for {
		msg, err := it.Next()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("next message of %s: %w", stream, err)
		}
		md, err := msg.Metadata()
		if err != nil {
			continue
		}
		if err := s.apply(msg.Subject(), msg.Data(), md.Sequence.Stream); err != nil {
			// The stream sequence identifies the message; its content may
			// carry UIDs and stays out of the log.
			s.log.Warn().Err(err).Str("stream", stream).Uint64("seq", md.Sequence.Stream).Msg("worklist: message skipped")
		}
		if md.NumPending == 0 {
			caughtUp()
		}
	}
}

// apply decodes one message and updates the index, telling the pages.
func (s *Server) apply(subject string, data []byte, seq uint64) error {
	rest, ok := strings.CutPrefix(subject, s.prefix+".")
	if !ok {
		return fmt.Errorf("subject outside the prefix")
	}
	var key string
	var err error
	switch {
	case rest == publish.SubjectResult:
		var r publish.Result
		if err = json.Unmarshal(data, &r); err == nil {
			key, err = s.ix.addResult(&r, seq, false)
		}
	case rest == publish.SubjectSkipped || rest == publish.SubjectError:
		var e publish.Event
		if err = json.Unmarshal(data, &e); err == nil {
			if e.Kind == "" {
				e.Kind = rest
			}
			key, err = s.ix.addEvent(&e, seq)
		}
	case rest == publish.SubjectUpdate:
		var u publish.Update
		if err = json.Unmarshal(data, &u); err == nil {
			key, _ = s.ix.addUpdate(&u)
		}
	case rest == publish.SubjectAck:
		var a publish.Ack
		if err = json.Unmarshal(data, &a); err == nil {
			key, _ = s.ix.addAck(&a)
		}
	case strings.HasPrefix(rest, publish.SubjectAlert+"."):
		var r publish.Result
		if err = json.Unmarshal(data, &r); err == nil {
			key, err = s.ix.addResult(&r, seq, true)
		}
	default:
		return fmt.Errorf("unexpected subject %s", rest)
	}
	if err != nil {
		return fmt.Errorf("%s message: %w", rest, err)
	}
	if key != "" && s.ready.Load() {
		s.changed(key)
	}
	return nil
}
