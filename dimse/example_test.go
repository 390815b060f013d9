package dimse_test

import (
	"context"
	"fmt"
	"os"

	"github.com/triaged/triaged/dimse"
)

// An SCU sending one Part 10 file to a PACS and checking the status.
func ExampleDial() {
	ctx := context.Background()
	a, err := dimse.Dial(ctx, "pacs.example:104", dimse.SCUOptions{
		CallingAE: "TRIAGED", CalledAE: "PACS",
		Contexts: []dimse.PresentationContext{
			{Abstract: "1.2.840.10008.5.1.4.1.1.7", Transfer: []string{"1.2.840.10008.1.2.1"}},
			{Abstract: dimse.VerificationSOPClass, Transfer: []string{"1.2.840.10008.1.2"}},
		},
	})
	if err != nil {
		fmt.Println(err) // an RJ error says why the PACS rejected us
		return
	}
	defer a.Release()
	f, _ := os.Open("result.dcm")
	defer f.Close()
	_, rsp, err := a.StorePart10(f)
	switch {
	case err != nil: // association lost: the instance's fate is unknown, resend
	case rsp.Status == dimse.StatusSuccess, rsp.Status&0xF000 == 0xB000: // stored (Bxxx: with a warning)
	default: // refused (Axxx, Cxxx): retry or dead-letter by class
	}
}
