package pacs

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/triaged/triaged/deliver"
	"github.com/triaged/triaged/dimse"
	"github.com/triaged/triaged/resultobj"
)

// CStoreOptions configure a C-STORE destination.
type CStoreOptions struct {
	Name string
	// Address is the PACS's host:port; CalledAE its AE title, CallingAE
	// ours (what the PACS administrator registers).
	Address             string
	CalledAE, CallingAE string
	// TLS, when set, is DICOM TLS (PS3.15 B.1).
	TLS *tls.Config
	// Timeout bounds connecting, the association's negotiation and each
	// response (0: 30s).
	Timeout time.Duration
	Log     zerolog.Logger
	// Priorities the destination takes (empty: all).
	Priorities []string
}

// CStore sends result objects with C-STORE, one association per burst.
type CStore struct {
	o     CStoreOptions
	log   zerolog.Logger
	assoc *dimse.Assoc
}

// The SOP classes this sender offers, each in explicit VR little endian
// (the objects are written in it; no transcoding).
var offered = []string{resultobj.Comprehensive3DSRStorage, resultobj.SecondaryCaptureStorage}

const explicitLE = "1.2.840.10008.1.2.1"

// NewCStore checks the options.
func NewCStore(o CStoreOptions) (*CStore, error) {
	if o.Address == "" || o.CalledAE == "" || o.CallingAE == "" {
		return nil, errors.New("pacs: C-STORE needs an address, a called AE and a calling AE")
	}
	for _, ae := range []string{o.CalledAE, o.CallingAE} {
		if len(ae) > 16 {
			return nil, fmt.Errorf("pacs: AE title %q is longer than 16 characters", ae)
		}
	}
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	return &CStore{o: o, log: o.Log.With().Str("destination", o.Name).Logger()}, nil
}

// Name is the destination's name.
func (c *CStore) Name() string { return c.o.Name }

// Priorities the destination takes.
func (c *CStore) Priorities() []string { return c.o.Priorities }

func (c *CStore) dial(ctx context.Context) error {
	var pcs []dimse.PresentationContext
	for _, sc := range offered {
		pcs = append(pcs, dimse.PresentationContext{Abstract: sc, Transfer: []string{explicitLE}})
	}
	a, err := dimse.Dial(ctx, c.o.Address, dimse.SCUOptions{CallingAE: c.o.CallingAE, CalledAE: c.o.CalledAE, Contexts: pcs, TLS: c.o.TLS,
		Limits: dimse.Limits{ARTIM: c.o.Timeout, IdleTimeout: c.o.Timeout}})
	if err != nil {
		// An association refused (AE not known, too busy) is the PACS's
		// configuration or load, not this film's: retried, and the
		// destination reports failing until fixed.
		return deliver.Retry(fmt.Errorf("associate with %s: %w", c.o.CalledAE, err))
	}
	c.assoc = a
	return nil
}

// Send stores each object and checks its status: Success and Warning
// (Bxxx) are accepted, a Warning logged; a failure status is a
// *deliver.SendError (Status: the DIMSE status), retryable for want of
// resources.
func (c *CStore) Send(ctx context.Context, objs []resultobj.Object) error {
	for _, o := range objs {
		ds, err := o.DataSet()
		if err != nil {
			return &deliver.SendError{Err: err}
		}
		reused := c.assoc != nil
		if !reused {
			if err := c.dial(ctx); err != nil {
				return err
			}
		}
		rsp, err := c.assoc.Store(o.SOPClassUID, o.SOPInstanceUID, o.TransferSyntaxUID, bytes.NewReader(ds))
		if errors.Is(err, dimse.ErrNoContext) {
			// The PACS accepted the association but not this SOP class.
			return &deliver.SendError{Err: fmt.Errorf("PACS %s does not accept %s in explicit VR little endian: %w", c.o.CalledAE, kind(o), err)}
		}
		if err != nil && reused {
			// The PACS may have closed an association kept for the burst:
			// once more on a fresh one.
			c.assoc = nil
			if err := c.dial(ctx); err != nil {
				return err
			}
			rsp, err = c.assoc.Store(o.SOPClassUID, o.SOPInstanceUID, o.TransferSyntaxUID, bytes.NewReader(ds))
		}
		if err != nil {
			c.assoc = nil // Store closed it
			return deliver.Retry(fmt.Errorf("C-STORE %s to %s: %w", kind(o), c.o.CalledAE, err))
		}
		if err := checkStatus(rsp.Status, rsp.Comment); err != nil {
			return fmt.Errorf("C-STORE %s to %s: %w", kind(o), c.o.CalledAE, err)
		}
		if rsp.Status != dimse.StatusSuccess {
			c.log.Warn().Str("object", kind(o)).Str("status", fmt.Sprintf("0x%04X", rsp.Status)).Str("comment", rsp.Comment).
				Msg("PACS stored the result object with a warning")
		}
	}
	return nil
}

// EndBurst releases the association.
func (c *CStore) EndBurst() {
	if c.assoc == nil {
		return
	}
	if err := c.assoc.Release(); err != nil {
		c.log.Debug().Err(err).Msg("association release not confirmed")
	}
	c.assoc = nil
}

func kind(o resultobj.Object) string {
	if o.SOPClassUID == resultobj.SecondaryCaptureStorage {
		return "SC"
	}
	return "SR"
}

// checkStatus classifies a storage status (PS3.4 B.2.3, PS3.7 C): nil for
// Success and Warning (0001, Bxxx); retryable for Refused: Out of
// Resources (A7xx), Processing Failure (0110), Resource Limitation (0213)
// and Cancel (FE00); any other failure (SOP class not supported 0122, not
// authorized 0124, data set mismatch A9xx, cannot understand Cxxx) is a
// refusal.
func checkStatus(status uint16, comment string) error {
	switch {
	case status == 0x0000, status == 0x0001, status&0xF000 == 0xB000:
		return nil
	}
	// Not SendError.Status, which is an HTTP status.
	se := &deliver.SendError{Body: comment, Err: fmt.Errorf("status 0x%04X (%s)", status, statusText(status))}
	switch {
	case status&0xFF00 == 0xA700, status == 0x0110, status == 0x0213, status == 0xFE00:
		se.Retryable = true
	}
	return se
}

func statusText(s uint16) string {
	switch {
	case s&0xFF00 == 0xA700:
		return "refused: out of resources"
	case s == 0x0110:
		return "processing failure"
	case s == 0x0122:
		return "SOP class not supported"
	case s == 0x0124:
		return "not authorized"
	case s == 0x0211:
		return "unrecognized operation"
	case s == 0x0213:
		return "resource limitation"
	case s&0xFF00 == 0xA900:
		return "data set does not match SOP class"
	case s&0xF000 == 0xC000:
		return "cannot understand"
	case s == 0xFE00:
		return "cancelled"
	}
	return "failure"
}
