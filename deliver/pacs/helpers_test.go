package pacs_test

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/rs/zerolog"

	"github.com/triaged/triaged/decode"
	"github.com/triaged/triaged/internal/testkit/testenv"
	"github.com/triaged/triaged/publish"
	"github.com/triaged/triaged/resultobj"
	"github.com/triaged/triaged/resultobj/record"
)

// films are shared real films (../shared) the objects are built from.
var films = []string{"original/nih_cxr_dx_implicit.dcm", "original/RG1_J2KI.dcm", "original/pydicom_tiny_CR_6154.dcm"}

// built is one film's objects and its study.
type built struct {
	objs  *resultobj.Objects
	study string
}

// buildObjects builds a real film's SR and an SC of a small overlay, as
// the daemon does for a critical film.
func buildObjects(t testing.TB, rel string) built {
	t.Helper()
	return built{objs: buildObjectsWith(t, rel, resultobj.Options{}), study: studyOf(t, rel)}
}

func studyOf(t testing.TB, rel string) string {
	src, err := resultobj.ReadSourceFile(testenv.DICOM(t, rel), decode.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	return src.StudyInstanceUID
}

func buildObjectsWith(t testing.TB, rel string, o resultobj.Options) *resultobj.Objects {
	t.Helper()
	src, err := resultobj.ReadSourceFile(testenv.DICOM(t, rel), decode.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	r := &publish.Result{Schema: publish.ResultSchema, Kind: "alert",
		Film:   publish.Film{StudyInstanceUID: src.StudyInstanceUID, SeriesInstanceUID: src.SeriesInstanceUID, SOPInstanceUID: src.SOPInstanceUID, SOPClassUID: src.SOPClassUID},
		Models: []publish.ModelScore{{Name: "squeezenet1_1", Version: "1", Provider: "CPUExecutionProvider", Probability: 0.97}},
		Score:  0.97, Priority: "critical", Thresholds: publish.Thresholds{Urgent: 0.3, Critical: 0.9},
		ModelSet: "ms-test", ScoredAt: time.Date(2026, 11, 29, 6, 0, 0, 0, time.UTC), Daemon: "test", Host: "test"}
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	img.Set(1, 1, color.RGBA{255, 0, 0, 255})
	var ov bytes.Buffer
	if err := png.Encode(&ov, img); err != nil {
		t.Fatal(err)
	}
	objs, err := resultobj.Build(src, r, ov.Bytes(), o)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

func jsOf(t testing.TB, url string) jetstream.JetStream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// storeInRecord puts a film's objects into the record as the daemon does.
func storeInRecord(t *testing.T, js jetstream.JetStream, b built) {
	t.Helper()
	st, err := record.Open(context.Background(), js, record.Options{ManageStreams: true})
	if err != nil {
		t.Fatal(err)
	}
	sr := b.objs.List()[0]
	_ = sr
	if _, _, err := st.Put(context.Background(), b.objs, "critical", "ms-test", b.study, "src", "test", "test"); err != nil {
		t.Fatal(err)
	}
}

func testLog(t *testing.T) zerolog.Logger {
	return zerolog.New(zerolog.NewTestWriter(t)).Level(zerolog.InfoLevel)
}
