// Package dimse is the DICOM upper layer (PS3.8) and the DIMSE messages
// (PS3.7) that storage needs, both sides: association negotiation
// (A-ASSOCIATE-RQ/AC/RJ, presentation contexts, maximum PDU length,
// implementation class UID and version name, asynchronous operations
// window answered 1/1, role selection ignored), P-DATA-TF fragmentation and
// reassembly, A-RELEASE, A-ABORT, ARTIM and idle timeouts, the command-set
// codec, C-ECHO and C-STORE.
//
// SCP: Accept negotiates on a freshly accepted connection under an
// AcceptPolicy, then Assoc.Serve answers C-ECHO and hands every C-STORE to a
// StoreHandler, which reads the data set as its fragments arrive (only the
// current PDU is ever in memory) and returns the status to send.
//
// SCU: Dial (or Associate over an existing connection) proposes
// presentation contexts; Assoc.Echo, Assoc.Store and Assoc.Release follow.
// Every response status is returned to the caller, who decides.
//
// Everything a peer claims is checked against a limit before anything is
// allocated for it: a PDU longer than our maximum, a data set in too many
// fragments or too many bytes gets an A-ABORT. Part 10 helpers
// (EncodeFileMeta, ReadFileMeta) and a streaming structure check of data
// sets (CheckDataSet) complete what a storage node needs.
//
// Nothing here starts a goroutine that outlives the call that started it,
// and nothing logs: callers log what they choose, without patient data.
package dimse
