package decode

// SupportedTransferSyntaxes lists the UIDs of the transfer syntaxes whose
// films the decoder turns into pixels, in the order of the README table.
// Network intakes accept exactly these, so that nothing is acknowledged
// that would then be quarantined as unsupported_transfer_syntax.
func SupportedTransferSyntaxes() []string {
	var out []string
	for _, s := range Syntaxes {
		if s.Supported() {
			out = append(out, s.UID)
		}
	}
	return out
}
