package config

import (
	"strings"
	"testing"
)

func TestDIMSEValidation(t *testing.T) {
	c := Default()
	c.Ingest.DIMSE = DefaultDIMSE()
	if ps := c.Validate(); len(ps) != 0 {
		t.Fatalf("defaults with ingest.dimse on: %v", ps)
	}
	c.Ingest.DIMSE.Listen = c.HTTP.Listen
	c.Ingest.DIMSE.AETitle = "WAY_TOO_LONG_AE_TITLE"
	c.Ingest.DIMSE.AllowedCallers = []DIMSECaller{{AETitle: "OK", Addresses: []string{"10.0.0.0/8", "not-an-ip"}}}
	c.Ingest.DIMSE.ExtraSOPClasses = []string{"1.2.840.10008.5.1.4.1.1.2", "CT"}
	c.Ingest.DIMSE.TLS = DIMSETLS{CertFile: "server.pem"}
	c.Ingest.DIMSE.MaxPDULength = 100
	got := c.Validate().Error()
	for _, want := range []string{
		"ingest.dimse.listen: uses the port of http.listen",
		"ingest.dimse.ae_title:",
		"ingest.dimse.allowed_callers[0].addresses[1]:",
		"ingest.dimse.extra_sop_classes[1]:",
		"ingest.dimse.tls: set both cert_file and key_file",
		"ingest.dimse.max_pdu_length:",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("missing problem %q in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "extra_sop_classes[0]") || strings.Contains(got, "addresses[0]") {
		t.Errorf("a valid value reported:\n%s", got)
	}
	// Off: nothing checked.
	c.Ingest.DIMSE.Enabled = false
	if strings.Contains(c.Validate().Error(), "ingest.dimse") {
		t.Errorf("a disabled section was validated")
	}
}

func TestDIMSEWithDefaults(t *testing.T) {
	d := DIMSEConfig{Enabled: true, AETitle: "PACSGW"}.WithDefaults()
	if d.AETitle != "PACSGW" || d.Listen != "127.0.0.1:11112" || d.MaxAssociations != 32 || d.IdleTimeout == 0 {
		t.Errorf("%+v", d)
	}
}
