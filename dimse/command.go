package dimse

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
)

// Command fields (PS3.7 E.1).
const (
	CStoreRQ  uint16 = 0x0001
	CStoreRSP uint16 = 0x8001
	CEchoRQ   uint16 = 0x0030
	CEchoRSP  uint16 = 0x8030
)

// NoDataSet is the Command Data Set Type that says no data set follows.
const NoDataSet uint16 = 0x0101

// Status codes the storage service returns (PS3.4 B.2.3, PS3.7 C).
const (
	StatusSuccess             uint16 = 0x0000
	StatusSOPClassNotSupport  uint16 = 0x0122
	StatusUnrecognizedOp      uint16 = 0x0211
	StatusOutOfResources      uint16 = 0xA700
	StatusDataSetMismatch     uint16 = 0xA900
	StatusCannotUnderstand    uint16 = 0xC000
	StatusProcessingFailure   uint16 = 0x0110
	StatusDuplicateInvocation uint16 = 0x0210
)

// Command-set elements (group 0000), by element number.
const (
	tagGroupLength     = 0x0000
	tagAffectedClass   = 0x0002
	tagCommandField    = 0x0100
	tagMessageID       = 0x0110
	tagRespondedTo     = 0x0120
	tagPriority        = 0x0700
	tagDataSetType     = 0x0800
	tagStatus          = 0x0900
	tagErrorComment    = 0x0902
	tagAffectedInst    = 0x1000
	tagMoveOriginator  = 0x1030
	tagMoveOrigMessage = 0x1031
)

// MaxCommandSize bounds a command set: a storage command is a few hundred
// bytes, so anything near this is hostile.
const MaxCommandSize = 64 << 10

// Command is a DIMSE command set, the fields storage and verification use.
type Command struct {
	Field          uint16
	MessageID      uint16
	RespondedTo    uint16
	AffectedClass  string
	AffectedInst   string
	Priority       uint16
	DataSetType    uint16
	Status         uint16
	ErrorComment   string
	MoveOriginator string
	MoveOrigMsgID  uint16
	// has records which of the optional US fields were present.
	hasStatus bool
}

// HasDataSet reports whether a data set follows the command.
func (c *Command) HasDataSet() bool { return c.DataSetType != NoDataSet }

var errCommand = errors.New("dimse: malformed command set")

// DecodeCommand decodes a command set (implicit VR little endian, PS3.7 6.3).
func DecodeCommand(b []byte) (*Command, error) {
	if len(b) > MaxCommandSize {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", errCommand, len(b), MaxCommandSize)
	}
	c := &Command{DataSetType: NoDataSet}
	seen := map[uint16]bool{}
	for len(b) > 0 {
		if len(b) < 8 {
			return nil, fmt.Errorf("%w: element header cut short (%d bytes left)", errCommand, len(b))
		}
		group, elem := binary.LittleEndian.Uint16(b), binary.LittleEndian.Uint16(b[2:])
		n := binary.LittleEndian.Uint32(b[4:])
		if group != 0 {
			return nil, fmt.Errorf("%w: element (%04x,%04x) outside group 0000", errCommand, group, elem)
		}
		if uint64(n) > uint64(len(b)-8) {
			return nil, fmt.Errorf("%w: element (0000,%04x) claims %d bytes, %d left", errCommand, elem, n, len(b)-8)
		}
		v := b[8 : 8+n]
		b = b[8+n:]
		if seen[elem] {
			return nil, fmt.Errorf("%w: element (0000,%04x) twice", errCommand, elem)
		}
		seen[elem] = true
		us := func(dst *uint16) error {
			if len(v) != 2 {
				return fmt.Errorf("%w: element (0000,%04x) of %d bytes, US needs 2", errCommand, elem, len(v))
			}
			*dst = binary.LittleEndian.Uint16(v)
			return nil
		}
		var err error
		switch elem {
		case tagAffectedClass:
			c.AffectedClass = trimUID(v)
		case tagAffectedInst:
			c.AffectedInst = trimUID(v)
		case tagCommandField:
			err = us(&c.Field)
		case tagMessageID:
			err = us(&c.MessageID)
		case tagRespondedTo:
			err = us(&c.RespondedTo)
		case tagPriority:
			err = us(&c.Priority)
		case tagDataSetType:
			err = us(&c.DataSetType)
		case tagStatus:
			err = us(&c.Status)
			c.hasStatus = true
		case tagMoveOrigMessage:
			err = us(&c.MoveOrigMsgID)
		case tagErrorComment:
			c.ErrorComment = strings.TrimRight(string(v), " \x00")
		case tagMoveOriginator:
			c.MoveOriginator = strings.TrimSpace(string(v))
		}
		if err != nil {
			return nil, err
		}
	}
	if !seen[tagCommandField] {
		return nil, fmt.Errorf("%w: no Command Field (0000,0100)", errCommand)
	}
	if c.Field&0x8000 != 0 && !c.hasStatus {
		return nil, fmt.Errorf("%w: response 0x%04x without Status (0000,0900)", errCommand, c.Field)
	}
	return c, nil
}

// Encode encodes the command set with its group length.
func (c *Command) Encode() []byte {
	var b []byte
	str := func(elem uint16, s string) {
		if s == "" {
			return
		}
		v := []byte(s)
		if len(v)%2 == 1 {
			pad := byte(' ')
			if elem == tagAffectedClass || elem == tagAffectedInst {
				pad = 0
			}
			v = append(v, pad)
		}
		b = binary.LittleEndian.AppendUint16(b, 0)
		b = binary.LittleEndian.AppendUint16(b, elem)
		b = binary.LittleEndian.AppendUint32(b, uint32(len(v)))
		b = append(b, v...)
	}
	us := func(elem, v uint16) {
		b = binary.LittleEndian.AppendUint16(b, 0)
		b = binary.LittleEndian.AppendUint16(b, elem)
		b = binary.LittleEndian.AppendUint32(b, 2)
		b = binary.LittleEndian.AppendUint16(b, v)
	}
	str(tagAffectedClass, c.AffectedClass)
	us(tagCommandField, c.Field)
	if c.Field&0x8000 == 0 {
		us(tagMessageID, c.MessageID)
	} else {
		us(tagRespondedTo, c.RespondedTo)
	}
	if c.Field == CStoreRQ {
		us(tagPriority, c.Priority)
	}
	us(tagDataSetType, c.DataSetType)
	if c.Field&0x8000 != 0 {
		us(tagStatus, c.Status)
	}
	if c.Field&0x8000 != 0 && c.ErrorComment != "" {
		ec := c.ErrorComment
		if len(ec) > 64 {
			ec = ec[:64]
		}
		str(tagErrorComment, ec)
	}
	str(tagAffectedInst, c.AffectedInst)
	str(tagMoveOriginator, c.MoveOriginator)
	if c.MoveOriginator != "" {
		us(tagMoveOrigMessage, c.MoveOrigMsgID)
	}
	out := make([]byte, 0, len(b)+12)
	out = binary.LittleEndian.AppendUint16(out, 0)
	out = binary.LittleEndian.AppendUint16(out, tagGroupLength)
	out = binary.LittleEndian.AppendUint32(out, 4)
	out = binary.LittleEndian.AppendUint32(out, uint32(len(b)))
	return append(out, b...)
}
