package decode

// Transfer syntax UIDs the decoder knows by name.
const (
	TSImplicitLE     = "1.2.840.10008.1.2"
	TSExplicitLE     = "1.2.840.10008.1.2.1"
	TSDeflatedLE     = "1.2.840.10008.1.2.1.99"
	TSExplicitBE     = "1.2.840.10008.1.2.2"
	TSJPEGBaseline   = "1.2.840.10008.1.2.4.50"
	TSJPEGExtended   = "1.2.840.10008.1.2.4.51"
	TSJPEGLossless   = "1.2.840.10008.1.2.4.57"
	TSJPEGLosslessSV = "1.2.840.10008.1.2.4.70"
	TSJPEGLSLossless = "1.2.840.10008.1.2.4.80"
	TSJPEGLSNear     = "1.2.840.10008.1.2.4.81"
	TSJ2KLossless    = "1.2.840.10008.1.2.4.90"
	TSJ2K            = "1.2.840.10008.1.2.4.91"
	TSRLE            = "1.2.840.10008.1.2.5"
)
