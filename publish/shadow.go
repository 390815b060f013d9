package publish

import "context"

// ShadowResultID is the message ID of a shadow result: the model set is
// part of it (as in ResultID), and the "shadow:" prefix keeps it apart from
// a live result of the same instance and set in the same stream, so each
// is deduplicated on its own.
func ShadowResultID(sopUID, modelSet string) string { return "shadow:" + sopUID + ":" + modelSet }

// PublishShadow stores a shadow result on <prefix>.shadow.result and
// nothing else: never an alert, whatever its priority. The priority it
// records is the one the model set would have given.
func (p *Publisher) PublishShadow(ctx context.Context, r *Result) (Published, error) {
	r.Kind = "result"
	r.Shadow = true
	r.MessageID = ShadowResultID(r.Film.SOPInstanceUID, r.ModelSet)
	hdr := map[string]string{"Triaged-Priority": r.Priority, "Triaged-Model-Set": r.ModelSet, "Triaged-Shadow": "true"}
	return p.publish(ctx, p.Subject(SubjectShadowResult), r.MessageID, ResultSchema, r, hdr)
}
