package resultobj

import (
	"bytes"
	"image"
	"image/png"
	"os"
	"os/exec"
	"strings"
	"testing"
)

const pixelmedJar = "/usr/share/java/pixelmed.jar"

// TestPixelMedSRValidator runs PixelMed's DicomSRValidator, which checks
// the content tree against TID 1500 and its sub-templates (dciodvfy checks
// the IOD only): no errors, no items outside the template.
func TestPixelMedSRValidator(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping: PixelMed's validator takes tens of seconds (-short)")
	}
	java := tool(t, "java", "default-jre-headless")
	if _, err := os.Stat(pixelmedJar); err != nil {
		t.Skipf("skipping: %s not found (Debian package libpixelmed-java)", pixelmedJar)
	}
	src, _ := readSource(t, "original/RG1_J2KI.dcm")
	var ov bytes.Buffer // with an SC, so its reference is validated too
	png.Encode(&ov, image.NewRGBA(image.Rect(0, 0, 16, 16)))
	objs, err := Build(src, testResult(src), ov.Bytes(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	// The JDK's default XPath limits are below what PixelMed's compiled
	// templates need.
	out, err := exec.Command(java, "-Djdk.xml.xpathExprOpLimit=0", "-Djdk.xml.xpathExprGrpLimit=0", "-Djdk.xml.xpathTotalOpLimit=0",
		"-cp", pixelmedJar, "com.pixelmed.validate.DicomSRValidator", writeTemp(t, "sr.dcm", objs.SR)).CombinedOutput()
	if err != nil {
		t.Fatalf("DicomSRValidator: %v\n%s", err, out)
	}
	s := string(out)
	if !strings.Contains(s, "Found Root Template TID_1500") || !strings.Contains(s, "IOD validation complete") {
		t.Fatalf("DicomSRValidator did not validate TID 1500:\n%s", s)
	}
	for _, l := range strings.Split(s, "\n") {
		if strings.HasPrefix(l, "Error") || strings.HasPrefix(l, "Warning") {
			t.Errorf("DicomSRValidator: %s", l)
		}
	}
}
