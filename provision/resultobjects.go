package provision

import (
	"github.com/triaged/triaged/config"
	"github.com/triaged/triaged/resultobj"
	"github.com/triaged/triaged/resultobj/record"
)

// ResultObjects is how the daemon builds a film's DICOM result objects
// (resultobj.Options) and where it keeps them (record.Options): the
// bucket and stream of the result_objects section, sized like the result
// stream (the objects are part of the result).
func ResultObjects(cfg *config.Config, version string) (resultobj.Options, record.Options) {
	rc := cfg.ResultObjects.WithDefaults()
	rs := cfg.NATS.ResultStream
	return resultobj.Options{UIDRoot: rc.UIDRoot, SeriesNumber: rc.SeriesNumber, SeriesDescription: rc.SeriesDescription, SoftwareVersion: version},
		record.Options{Prefix: cfg.NATS.SubjectPrefix, Bucket: rc.Bucket, Stream: rc.Stream, Replicas: rs.Replicas, MaxAge: rs.MaxAge,
			DuplicateWindow: rs.DuplicateWindow, Memory: rs.Storage == "memory", ManageStreams: cfg.NATS.ManageStreams, Timeout: cfg.NATS.PublishTimeout}
}
