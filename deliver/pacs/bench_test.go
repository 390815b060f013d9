package pacs_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/triaged/triaged/deliver/pacs"
	"github.com/triaged/triaged/internal/testkit/orthanc"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/resultobj"
	"github.com/triaged/triaged/resultobj/record"
)

// BenchmarkStoreInRecord: what the daemon adds per film before its Ack,
// storing the SR and the SC (a 1024-pixel-wide film's overlay is larger;
// this one is small) in the bucket and publishing the message.
func BenchmarkStoreInRecord(b *testing.B) {
	srv := testenv.NATS(b)
	js := jsOf(b, srv.ClientURL())
	st, err := record.Open(context.Background(), js, record.Options{ManageStreams: true})
	if err != nil {
		b.Fatal(err)
	}
	// Distinct bytes every time (a re-score), so every object is written.
	all := make([]*resultobj.Objects, b.N)
	for i := range all {
		all[i] = buildObjectsWith(b, films[0], resultobj.Options{SeriesNumber: 100 + i})
	}
	b.ResetTimer()
	for i := range b.N {
		if _, _, err := st.Put(context.Background(), all[i], "critical", "ms", "1.2", "1.2.3", "t", "t"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCStoreFilm: one film's SR and SC to Orthanc by C-STORE on an
// association kept across films (a burst).
func BenchmarkCStoreFilm(b *testing.B) {
	o := orthanc.Start(b, orthanc.Options{DICOM: true})
	c, err := pacs.NewCStore(pacs.CStoreOptions{Name: "bench", Address: fmt.Sprintf("127.0.0.1:%d", o.DICOMPort), CalledAE: o.AET, CallingAE: "TRIAGED"})
	if err != nil {
		b.Fatal(err)
	}
	defer c.EndBurst()
	list := buildObjects(b, films[0]).objs.List()
	b.ResetTimer()
	for range b.N {
		if err := c.Send(context.Background(), list); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOutboxSend: one film's SR and SC written into an outbox folder
// (temporary file, fsync, rename, each; then fsync of the folder), what a
// film waits for before its Ack. Set TMPDIR to measure the gateway's disk.
func BenchmarkOutboxSend(b *testing.B) {
	objs := buildObjects(b, films[0]).objs.List()
	o, err := pacs.NewOutbox(pacs.OutboxOptions{Name: "bench", Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	size := 0
	for _, x := range objs {
		size += len(x.File)
	}
	b.SetBytes(int64(size))
	b.ResetTimer()
	for range b.N {
		if err := o.Send(context.Background(), objs); err != nil {
			b.Fatal(err)
		}
	}
}
