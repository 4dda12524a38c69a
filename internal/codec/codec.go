// Package codec encrypts the payloads Tutti writes to Temporal with
// AES-256-GCM, so journey specs (templates, subjects), signal data and
// activity inputs and results in workflow histories are unreadable to anyone
// who can read Temporal but does not hold Tutti's keys.
//
// Codec is a converter.PayloadCodec: the worker and the API use it through
// DataConverter and FailureConverter (internal/temporalclient), and the API
// serves it over Temporal's remote codec protocol so the Temporal UI and
// `temporal workflow show --codec-endpoint` can show decoded histories to ops
// who hold the endpoint's token.
//
// Keys rotate without breaking running journeys: several keys are
// configured, the first (the newest) encrypts, and every one of them
// decrypts. Each encrypted payload names its key in its metadata, so a run
// started under an old key replays after a new key is put in front of it.
// Payloads that were never encrypted (histories recorded before encryption
// was turned on) pass through Decode unchanged.
package codec

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"regexp"
	"strings"

	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// Payload metadata written on every encrypted payload.
const (
	// EncodingEncrypted is the "encoding" metadata value of an encrypted
	// payload; the original payload, metadata included, is the ciphertext.
	EncodingEncrypted = "binary/encrypted"
	// MetadataKeyID names the key that encrypted the payload.
	MetadataKeyID = "encryption-key-id"
)

// KeySize is the length of an AES-256 key in bytes.
const KeySize = 32

// keyIDPattern keeps key ids printable and short: they are written in clear
// into every payload's metadata and into error messages.
var keyIDPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// Key is one named AES-256 key. Its String form is the id alone, so a Key
// (or a Config holding one) can be logged without leaking the secret.
type Key struct {
	ID     string
	secret []byte
}

// NewKey checks an id and 32 bytes of key material.
func NewKey(id string, secret []byte) (Key, error) {
	if !keyIDPattern.MatchString(id) {
		return Key{}, fmt.Errorf("key id %q: use 1-64 letters, digits, '.', '_' or '-'", id)
	}
	if len(secret) != KeySize {
		return Key{}, fmt.Errorf("key %q: want %d bytes of key material, got %d", id, KeySize, len(secret))
	}
	return Key{ID: id, secret: append([]byte(nil), secret...)}, nil
}

// GenerateKey makes a new random key with the given id.
func GenerateKey(id string) (Key, error) {
	secret := make([]byte, KeySize)
	rand.Read(secret) // never fails (crypto/rand, Go 1.24+)
	return NewKey(id, secret)
}

// String is the key id: the secret never goes into logs.
func (k Key) String() string { return k.ID }

// GoString keeps %#v from printing the secret too.
func (k Key) GoString() string { return fmt.Sprintf("codec.Key{ID: %q}", k.ID) }

// Entry is the key in the key-list form ParseKeys reads: "id:base64".
func (k Key) Entry() string { return k.ID + ":" + base64.StdEncoding.EncodeToString(k.secret) }

// ParseKeys reads a key list: comma-separated "id:base64key" entries, the
// newest first, e.g. "2026-06:BASE64,2026-01:BASE64". The key material is
// 32 bytes in standard or URL-safe base64, padded or not (what
// `openssl rand -base64 32` or `tutti codec new-key ID` prints). Errors never
// repeat key material.
func ParseKeys(raw string) ([]Key, error) {
	var keys []Key
	seen := map[string]bool{}
	for i, entry := range strings.Split(raw, ",") {
		entry = strings.TrimSpace(entry)
		id, material, ok := strings.Cut(entry, ":")
		id, material = strings.TrimSpace(id), strings.TrimSpace(material)
		if !ok || id == "" || material == "" {
			return nil, fmt.Errorf("entry %d: want id:base64key (comma-separated, newest first)", i+1)
		}
		secret, err := decodeBase64(material)
		if err != nil {
			return nil, fmt.Errorf("key %q: the key material is not base64", id)
		}
		k, err := NewKey(id, secret)
		if err != nil {
			return nil, err
		}
		if seen[id] {
			return nil, fmt.Errorf("key id %q is listed twice", id)
		}
		seen[id] = true
		keys = append(keys, k)
	}
	return keys, nil
}

// decodeBase64 accepts standard and URL-safe base64, with or without padding.
func decodeBase64(s string) ([]byte, error) {
	s = strings.TrimRight(s, "=")
	if b, err := base64.RawStdEncoding.DecodeString(s); err == nil {
		return b, nil
	}
	return base64.RawURLEncoding.DecodeString(s)
}

// Codec encrypts with its first key and decrypts with any of its keys. It is
// safe for concurrent use. Build it with New.
type Codec struct {
	encryptWith string
	ids         []string
	aeads       map[string]cipher.AEAD
}

// New builds a codec over keys, the newest (the one that encrypts) first.
func New(keys ...Key) (*Codec, error) {
	if len(keys) == 0 {
		return nil, errors.New("codec: no keys")
	}
	c := &Codec{encryptWith: keys[0].ID, aeads: make(map[string]cipher.AEAD, len(keys))}
	for _, k := range keys {
		if _, dup := c.aeads[k.ID]; dup {
			return nil, fmt.Errorf("codec: key id %q given twice", k.ID)
		}
		if len(k.secret) != KeySize {
			return nil, fmt.Errorf("codec: key %q: want %d bytes of key material, got %d (build keys with NewKey)", k.ID, KeySize, len(k.secret))
		}
		block, err := aes.NewCipher(k.secret)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", k.ID, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("codec: key %q: %w", k.ID, err)
		}
		c.aeads[k.ID] = aead
		c.ids = append(c.ids, k.ID)
	}
	return c, nil
}

// EncryptingKeyID is the id of the key new payloads are encrypted with.
func (c *Codec) EncryptingKeyID() string { return c.encryptWith }

// KeyIDs lists every key the codec decrypts with, newest first.
func (c *Codec) KeyIDs() []string { return append([]string(nil), c.ids...) }

// Encode encrypts each payload, its metadata included, under the newest key
// with a fresh random nonce. The result carries only the encoding and the
// key id in clear.
func (c *Codec) Encode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	aead := c.aeads[c.encryptWith]
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		plain, err := proto.Marshal(p)
		if err != nil {
			return payloads, fmt.Errorf("codec: payload %d: %w", i, err)
		}
		nonce := make([]byte, aead.NonceSize(), aead.NonceSize()+len(plain)+aead.Overhead())
		rand.Read(nonce) // never fails (crypto/rand, Go 1.24+)
		out[i] = &commonpb.Payload{
			Metadata: map[string][]byte{
				converter.MetadataEncoding: []byte(EncodingEncrypted),
				MetadataKeyID:              []byte(c.encryptWith),
			},
			Data: aead.Seal(nonce, nonce, plain, nil),
		}
	}
	return out, nil
}

// Decode decrypts the encrypted payloads and returns the others as they are,
// so histories written before encryption was turned on still replay. A
// payload under a key the codec does not hold is an *UnknownKeyError; one
// that fails authentication (tampered, truncated, or the key material under
// that id changed) is an error too: nothing is ever guessed.
func (c *Codec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out := make([]*commonpb.Payload, len(payloads))
	for i, p := range payloads {
		if string(p.GetMetadata()[converter.MetadataEncoding]) != EncodingEncrypted {
			out[i] = p
			continue
		}
		id := string(p.GetMetadata()[MetadataKeyID])
		if id == "" {
			return payloads, fmt.Errorf("codec: payload %d is marked %s but names no key (%s metadata)", i, EncodingEncrypted, MetadataKeyID)
		}
		aead, ok := c.aeads[id]
		if !ok {
			return payloads, &UnknownKeyError{KeyID: id, Known: c.KeyIDs()}
		}
		data := p.GetData()
		if len(data) < aead.NonceSize()+aead.Overhead() {
			return payloads, fmt.Errorf("codec: payload %d (key %q): ciphertext too short (%d bytes)", i, id, len(data))
		}
		nonce, sealed := data[:aead.NonceSize()], data[aead.NonceSize():]
		plain, err := aead.Open(nil, nonce, sealed, nil)
		if err != nil {
			return payloads, fmt.Errorf("codec: payload %d (key %q) failed authentication: tampered, truncated, or not encrypted with this key", i, id)
		}
		orig := &commonpb.Payload{}
		if err := proto.Unmarshal(plain, orig); err != nil {
			return payloads, fmt.Errorf("codec: payload %d (key %q): decrypted bytes are not a payload: %w", i, id, err)
		}
		out[i] = orig
	}
	return out, nil
}

// UnknownKeyError: a payload was encrypted under a key the codec does not
// hold, typically an old key removed from the list while runs encrypted
// under it were still open.
type UnknownKeyError struct {
	KeyID string
	Known []string
}

func (e *UnknownKeyError) Error() string {
	return fmt.Sprintf("codec: payload encrypted with key %q, which is not configured (configured: %s); "+
		"put that key back in the key list: it must stay until no open run uses it", e.KeyID, strings.Join(e.Known, ", "))
}

// DataConverter is the SDK's default converter with this codec applied to
// every payload: workflow and activity inputs and results, signals, queries,
// memos and markers.
//
// Inside workflow code a payload that cannot be decrypted panics instead of
// returning an error. The SDK turns an error there into a failed run (an
// input it cannot decode) or hands it to the workflow as if an activity had
// failed; a panic fails only the workflow task, which Temporal retries
// (with the worker's default BlockWorkflow panic policy). So a run whose key
// was removed too early waits, and goes on once the key is back.
func (c *Codec) DataConverter() converter.DataConverter {
	return &dataConverter{
		DataConverter: converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), c),
		inWorkflow:    converter.NewCodecDataConverter(converter.GetDefaultDataConverter(), workflowTaskCodec{c}),
	}
}

// dataConverter picks the decoding behaviour by where the SDK converts:
// it implements converter.ContextAware.
type dataConverter struct {
	converter.DataConverter
	inWorkflow converter.DataConverter
}

// WithWorkflowContext is the converter the SDK uses inside workflow code.
func (d *dataConverter) WithWorkflowContext(converter.WorkflowContext) converter.DataConverter {
	return d.inWorkflow
}

// WithContext is the converter for activities and clients: errors stay errors.
func (d *dataConverter) WithContext(context.Context) converter.DataConverter { return d }

// workflowTaskCodec panics where Codec.Decode returns an error; see DataConverter.
type workflowTaskCodec struct{ *Codec }

func (w workflowTaskCodec) Decode(payloads []*commonpb.Payload) ([]*commonpb.Payload, error) {
	out, err := w.Codec.Decode(payloads)
	if err != nil {
		panic(fmt.Errorf("%w (the workflow task fails and is retried until the payload can be decrypted)", err))
	}
	return out, nil
}

// FailureConverter also encrypts failure messages and stack traces (by
// default the SDK keeps them in clear beside the encrypted details): an
// error can quote the data it failed on.
func (c *Codec) FailureConverter() converter.FailureConverter {
	return temporal.NewDefaultFailureConverter(temporal.DefaultFailureConverterOptions{
		DataConverter:          c.DataConverter(),
		EncodeCommonAttributes: true,
	})
}
