package dimse

import (
	"bufio"
	"bytes"
	"errors"
	"reflect"
	"runtime"
	"testing"

	"github.com/triaged/triaged/internal/dicomtest"
)

func sampleRQ() *AssociateRQ {
	return &AssociateRQ{
		ProtocolVersion: 1, CalledAE: "TRIAGED", CallingAE: "MODALITY", AppContext: ApplicationContext,
		Contexts: []PresentationContext{
			{ID: 1, Abstract: "1.2.840.10008.5.1.4.1.1.1", Transfer: []string{"1.2.840.10008.1.2.1", "1.2.840.10008.1.2"}},
			{ID: 3, Abstract: VerificationSOPClass, Transfer: []string{"1.2.840.10008.1.2"}},
		},
		MaxPDULength: 16384, ImplClassUID: ImplementationClassUID, ImplVersion: ImplementationVersion,
		AsyncInvoked: 5, AsyncPerformed: 5,
	}
}

func TestAssociateRoundTrip(t *testing.T) {
	rq := sampleRQ()
	b := EncodeAssociate(rq, false)
	typ, body, err := ReadPDU(bytes.NewReader(b), 1<<20, nil)
	if err != nil || typ != pduAssociateRQ {
		t.Fatalf("read: %v type %d", err, typ)
	}
	got, err := DecodeAssociate(body, false)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, rq) {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, rq)
	}
	ac := *rq
	ac.Contexts = []PresentationContext{{ID: 1, Transfer: []string{"1.2.840.10008.1.2.1"}, Result: PCAccepted}, {ID: 3, Transfer: []string{"1.2.840.10008.1.2"}, Result: PCAbstractSyntaxNotSupported}}
	_, body, _ = ReadPDU(bytes.NewReader(EncodeAssociate(&ac, true)), 1<<20, nil)
	gac, err := DecodeAssociate(body, true)
	if err != nil || !reflect.DeepEqual(gac.Contexts, ac.Contexts) {
		t.Errorf("AC contexts %+v, %v", gac, err)
	}
	if _, err := DecodeAssociate(body, false); err == nil {
		t.Errorf("an -AC body decoded as an -RQ")
	}
}

func TestReadPDUBounds(t *testing.T) {
	_, _, err := ReadPDU(bytes.NewReader([]byte{4, 0, 0xFF, 0xFF, 0xFF, 0xFF}), 1<<20, nil)
	if !errors.Is(err, ErrPDUTooLarge) {
		t.Errorf("4 GiB PDU: %v", err)
	}
	_, _, err = ReadPDU(bytes.NewReader([]byte{9, 0, 0, 0, 0, 4, 0, 0, 0, 0}), 1<<20, nil)
	if !errors.Is(err, errMalformed) {
		t.Errorf("unknown PDU type: %v", err)
	}
	_, _, err = ReadPDU(bytes.NewReader([]byte{4, 0, 0, 0, 0, 10, 1, 2}), 1<<20, nil)
	if err == nil {
		t.Errorf("short body accepted")
	}
}

func TestPDV(t *testing.T) {
	b := appendPDataHeader(nil, 3, true, true, 4)
	b = append(b, 1, 2, 3, 4)
	pdv, rest, err := NextPDV(b[6:])
	if err != nil || pdv.Context != 3 || !pdv.Command || !pdv.Last || !bytes.Equal(pdv.Data, []byte{1, 2, 3, 4}) || len(rest) != 0 {
		t.Errorf("PDV %+v rest %d err %v", pdv, len(rest), err)
	}
	if _, _, err := NextPDV([]byte{0, 0, 0, 9, 1, 0, 1}); err == nil {
		t.Errorf("PDV longer than its PDU accepted")
	}
	if _, _, err := NextPDV([]byte{0, 0, 0, 2, 1, 0x80}); err == nil {
		t.Errorf("reserved message control bits accepted")
	}
}

func TestCommandRoundTrip(t *testing.T) {
	for _, c := range []*Command{
		{Field: CStoreRQ, MessageID: 7, AffectedClass: "1.2.840.10008.5.1.4.1.1.1", AffectedInst: "1.2.3.44", Priority: 2, DataSetType: 0, MoveOriginator: "PACS", MoveOrigMsgID: 9},
		{Field: CStoreRSP, RespondedTo: 7, AffectedClass: "1.2.840.10008.5.1.4.1.1.1", AffectedInst: "1.2.3.44", Status: 0xA700, ErrorComment: "out of resources", DataSetType: NoDataSet, hasStatus: true},
		{Field: CEchoRQ, MessageID: 1, AffectedClass: VerificationSOPClass, DataSetType: NoDataSet},
	} {
		got, err := DecodeCommand(c.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, c) {
			t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
		}
	}
	if _, err := DecodeCommand([]byte{0, 0, 0, 1, 0xFF, 0xFF, 0xFF, 0xFF}); err == nil {
		t.Errorf("element claiming 4 GiB accepted")
	}
	if _, err := DecodeCommand((&Command{Field: CStoreRSP}).Encode()[:20]); err == nil {
		t.Errorf("truncated command accepted")
	}
}

func TestFileMetaRoundTrip(t *testing.T) {
	m := FileMeta{SOPClass: "1.2.840.10008.5.1.4.1.1.1", SOPInstance: "1.2.3.4.5", TransferSyntax: "1.2.840.10008.1.2.1", SourceAE: "MODALITY"}
	b := append(EncodeFileMeta(m), 1, 2, 3)
	br := bufio.NewReader(bytes.NewReader(b))
	got, err := ReadFileMeta(br)
	if err != nil || got != m {
		t.Fatalf("%+v %v", got, err)
	}
	rest, _ := br.Peek(3)
	if !bytes.Equal(rest, []byte{1, 2, 3}) {
		t.Errorf("reader not left at the data set: %v", rest)
	}
}

func TestCheckDataSet(t *testing.T) {
	for _, ts := range []string{dicomtest.ImplicitLE, dicomtest.ExplicitLE, dicomtest.ExplicitBE, dicomtest.DeflatedLE} {
		for _, h := range []dicomtest.Image{
			{TransferSyntax: ts, Rows: 8, Columns: 8, Pixels: make([]int, 64), SOPInstanceUID: "1.2.3.4",
				Extra: []dicomtest.Elem{dicomtest.Seq(dicomtest.Tag(0x0008, 0x1140), []dicomtest.Elem{dicomtest.Str(dicomtest.Tag(0x0008, 0x1150), "UI", "1.2.3")})}},
		} {
			file := h.Bytes()
			br := bufio.NewReader(bytes.NewReader(file))
			if _, err := ReadFileMeta(br); err != nil {
				t.Fatal(err)
			}
			var ds bytes.Buffer
			br.WriteTo(&ds)
			info, err := CheckDataSet(bytes.NewReader(ds.Bytes()), ts, DataSetLimits{})
			if err != nil {
				t.Errorf("%s: %v", ts, err)
				continue
			}
			if info.SOPInstance != "1.2.3.4" || info.SOPClass != "1.2.840.10008.5.1.4.1.1.1.1" {
				t.Errorf("%s: info %+v", ts, info)
			}
			if ts == dicomtest.DeflatedLE {
				continue
			}
			if _, err := CheckDataSet(bytes.NewReader(ds.Bytes()[:ds.Len()-10]), ts, DataSetLimits{}); !errors.Is(err, ErrDataSet) {
				t.Errorf("%s truncated: %v", ts, err)
			}
		}
	}
	// Encapsulated pixel data (undefined length, items, delimiter).
	enc := dicomtest.Image{Rows: 8, Columns: 8, Pixels: make([]int, 64), TransferSyntax: "1.2.840.10008.1.2.5"}
	pd := dicomtest.Encapsulated([]byte{1, 2, 3, 4})
	enc.PixelData = &pd
	f := enc.File()
	f.TransferSyntax = "1.2.840.10008.1.2.5"
	br := bufio.NewReader(bytes.NewReader(f.Bytes()))
	ReadFileMeta(br)
	if _, err := CheckDataSet(br, "1.2.840.10008.1.2.5", DataSetLimits{}); err != nil {
		t.Errorf("encapsulated: %v", err)
	}
}

func TestCheckDataSetUNSequence(t *testing.T) {
	// (0009,1010) UN, undefined length, holding an implicit VR item.
	var b []byte
	le := func(v ...any) {
		for _, x := range v {
			switch x := x.(type) {
			case uint16:
				b = append(b, byte(x), byte(x>>8))
			case uint32:
				b = append(b, byte(x), byte(x>>8), byte(x>>16), byte(x>>24))
			case string:
				b = append(b, x...)
			}
		}
	}
	le(uint16(0x0009), uint16(0x1010), "UN", uint16(0), uint32(0xFFFFFFFF))
	le(uint16(0xFFFE), uint16(0xE000), uint32(0xFFFFFFFF))
	le(uint16(0x0008), uint16(0x0100), uint32(4), "ABCD") // implicit VR inside
	le(uint16(0xFFFE), uint16(0xE00D), uint32(0))
	le(uint16(0xFFFE), uint16(0xE0DD), uint32(0))
	le(uint16(0x0010), uint16(0x0010), "PN", uint16(2), "X ")
	if _, err := CheckDataSet(bytes.NewReader(b), "1.2.840.10008.1.2.1", DataSetLimits{}); err != nil {
		t.Fatal(err)
	}
}

func TestReadPDUAllocatesWhatArrives(t *testing.T) {
	// Claims 16 MiB (within the limit), sends 10 bytes.
	in := append([]byte{4, 0, 0x01, 0, 0, 0}, make([]byte, 10)...)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, _, err := ReadPDU(bytes.NewReader(in), 32<<20, nil); err == nil {
		t.Fatal("short PDU accepted")
	}
	runtime.ReadMemStats(&after)
	if per := after.TotalAlloc - before.TotalAlloc; per > 1<<20 {
		t.Errorf("a PDU claiming 16 MiB with 10 bytes sent allocated %d bytes", per)
	}
}
