// Package pacs delivers a film's DICOM result objects (the SR and the
// heatmap image the daemon keeps in the record, package resultobj/record)
// to PACS, durably, over C-STORE (CStore, the project's DICOM upper layer
// in package dimse) or STOW-RS (STOW), or as files in an outbox folder a
// gateway picks up (Outbox: <SOP Instance UID>.dcm, written to a
// temporary name, synced, renamed, the folder synced).
//
// Each destination has its own durable JetStream pull consumer
// "triaged-deliver-<name>" on the result objects stream (<prefix>.objects.>,
// optionally filtered by priority). The consumer lives on the server, so a
// delivery survives restarts and is shared by a fleet: each film goes to
// one daemon at a time. A message (one film's objects) is acknowledged
// only after the PACS accepted every object: C-STORE status Success or
// Warning (Bxxx, logged), STOW-RS every instance in the Referenced SOP
// Sequence and none in the Failed SOP Sequence, a 202 included; an outbox
// once every file and the folder are synced.
//
// Failures: a PACS that cannot be reached, aborts, answers 5xx/429 or
// refuses for want of resources (C-STORE A7xx, 0110, 0213), and an outbox
// folder that is full, not writable or gone, are retried
// without limit, with capped exponential backoff and jitter (the rest of
// the batch is handed back and the destination pauses). A refusal (a SOP
// class not supported, a data set it cannot understand, STOW-RS 4xx or a
// failed instance with such a reason) is retried Options.RefusalRetries
// times, in case an administrator is fixing it, then published with the
// reason to the dead-letter subject <prefix>.deliver.dead.<name> (stream
// deliver.dead_letter_stream, the alert deliveries' one) and terminated:
// never a silent success.
//
// Duplicates: a daemon killed between the PACS's answer and the
// acknowledgement sends the film's objects again. They carry the same SOP
// Instance UIDs, which a PACS takes as the same objects.
//
// Usage (the daemon wires it through deliver/setup):
//
//	d, err := pacs.New(js, pacs.Options{Prefix: "triaged", Stream: "TRIAGED_OBJECTS"}, pacs.NewCStore(...), stow)
//	go d.Run(ctx) // returns once ctx ends and every goroutine stopped
package pacs
