package codec

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	commonpb "go.temporal.io/api/common/v1"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/temporal"
	"google.golang.org/protobuf/proto"
)

// fixedKey is a key whose material is the byte b repeated: tests need keys
// they can tell apart, not secret ones.
func fixedKey(t *testing.T, id string, b byte) Key {
	t.Helper()
	k, err := NewKey(id, bytes.Repeat([]byte{b}, KeySize))
	require.NoError(t, err)
	return k
}

func newCodec(t *testing.T, keys ...Key) *Codec {
	t.Helper()
	c, err := New(keys...)
	require.NoError(t, err)
	return c
}

// jsonPayloads is what the SDK's default converter makes of values.
func jsonPayloads(t *testing.T, values ...any) []*commonpb.Payload {
	t.Helper()
	ps, err := converter.GetDefaultDataConverter().ToPayloads(values...)
	require.NoError(t, err)
	return ps.Payloads
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	c := newCodec(t, fixedKey(t, "k1", 1))
	in := jsonPayloads(t, map[string]string{"subject": "Welcome aboard, zebra"}, 42, nil, []byte{0, 1, 2}, "")

	enc, err := c.Encode(in)
	require.NoError(t, err)
	require.Len(t, enc, len(in))
	for i, p := range enc {
		require.Equal(t, EncodingEncrypted, string(p.Metadata[converter.MetadataEncoding]), "payload %d", i)
		require.Equal(t, "k1", string(p.Metadata[MetadataKeyID]))
		require.Len(t, p.Metadata, 2, "only the encoding and the key id are in clear")
		require.NotContains(t, string(p.Data), "zebra")
		require.NotContains(t, string(p.Data), "json/plain", "the original metadata is encrypted too")
	}

	dec, err := c.Decode(enc)
	require.NoError(t, err)
	require.Len(t, dec, len(in))
	for i := range in {
		require.True(t, proto.Equal(in[i], dec[i]), "payload %d: got %v, want %v", i, dec[i], in[i])
	}
}

func TestEncodeUsesAFreshNonceEachTime(t *testing.T) {
	t.Parallel()
	c := newCodec(t, fixedKey(t, "k1", 1))
	in := jsonPayloads(t, "same value")
	a, err := c.Encode(in)
	require.NoError(t, err)
	b, err := c.Encode(in)
	require.NoError(t, err)
	require.NotEqual(t, a[0].Data, b[0].Data, "equal plaintexts must not give equal ciphertexts")
}

func TestEncodeDoesNotMutateItsInput(t *testing.T) {
	t.Parallel()
	c := newCodec(t, fixedKey(t, "k1", 1))
	in := jsonPayloads(t, "value")
	before := proto.Clone(in[0])
	_, err := c.Encode(in)
	require.NoError(t, err)
	require.True(t, proto.Equal(before, in[0]))
}

// A payload encrypted under key 1 decodes once key 2 is put in front of it,
// and new payloads are encrypted under key 2: the rotation a running journey
// goes through.
func TestRotation(t *testing.T) {
	t.Parallel()
	k1, k2 := fixedKey(t, "k1", 1), fixedKey(t, "k2", 2)
	old := newCodec(t, k1)
	rotated := newCodec(t, k2, k1)
	require.Equal(t, "k2", rotated.EncryptingKeyID())
	require.Equal(t, []string{"k2", "k1"}, rotated.KeyIDs())

	in := jsonPayloads(t, "started under k1")
	underK1, err := old.Encode(in)
	require.NoError(t, err)
	dec, err := rotated.Decode(underK1)
	require.NoError(t, err)
	require.True(t, proto.Equal(in[0], dec[0]))

	underK2, err := rotated.Encode(in)
	require.NoError(t, err)
	require.Equal(t, "k2", string(underK2[0].Metadata[MetadataKeyID]))

	// Once every run under k1 has finished, k1 can go; until then it must stay.
	onlyK2 := newCodec(t, k2)
	_, err = onlyK2.Decode(underK2)
	require.NoError(t, err)
	_, err = onlyK2.Decode(underK1)
	var unknown *UnknownKeyError
	require.ErrorAs(t, err, &unknown)
	require.Equal(t, "k1", unknown.KeyID)
}

// Same id, different key material: authentication fails instead of
// producing garbage.
func TestDecodeWithChangedKeyMaterialFails(t *testing.T) {
	t.Parallel()
	enc, err := newCodec(t, fixedKey(t, "k1", 1)).Encode(jsonPayloads(t, "x"))
	require.NoError(t, err)
	_, err = newCodec(t, fixedKey(t, "k1", 9)).Decode(enc)
	require.ErrorContains(t, err, "failed authentication")
}

func TestUnknownKeyIDIsAClearError(t *testing.T) {
	t.Parallel()
	enc, err := newCodec(t, fixedKey(t, "2025-01", 1)).Encode(jsonPayloads(t, "x"))
	require.NoError(t, err)
	_, err = newCodec(t, fixedKey(t, "2026-06", 2), fixedKey(t, "2026-01", 3)).Decode(enc)
	var unknown *UnknownKeyError
	require.ErrorAs(t, err, &unknown)
	require.Equal(t, &UnknownKeyError{KeyID: "2025-01", Known: []string{"2026-06", "2026-01"}}, unknown)
	require.EqualError(t, err, `codec: payload encrypted with key "2025-01", which is not configured (configured: 2026-06, 2026-01); `+
		`put that key back in the key list: it must stay until no open run uses it`)
}

func TestTamperedPayloadsAreRejected(t *testing.T) {
	t.Parallel()
	c := newCodec(t, fixedKey(t, "k1", 1))
	for _, tc := range []struct {
		name    string
		tamper  func(p *commonpb.Payload)
		wantErr string
	}{
		{"flipped ciphertext bit", func(p *commonpb.Payload) { p.Data[len(p.Data)/2] ^= 0x01 }, "failed authentication"},
		{"flipped nonce bit", func(p *commonpb.Payload) { p.Data[0] ^= 0x80 }, "failed authentication"},
		{"flipped tag bit", func(p *commonpb.Payload) { p.Data[len(p.Data)-1] ^= 0x01 }, "failed authentication"},
		{"truncated", func(p *commonpb.Payload) { p.Data = p.Data[:len(p.Data)-1] }, "failed authentication"},
		{"shorter than nonce and tag", func(p *commonpb.Payload) { p.Data = p.Data[:20] }, "too short"},
		{"empty", func(p *commonpb.Payload) { p.Data = nil }, "too short"},
		{"appended byte", func(p *commonpb.Payload) { p.Data = append(p.Data, 0) }, "failed authentication"},
		{"key id removed", func(p *commonpb.Payload) { delete(p.Metadata, MetadataKeyID) }, "names no key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			enc, err := c.Encode(jsonPayloads(t, map[string]string{"subject": "hello"}))
			require.NoError(t, err)
			tc.tamper(enc[0])
			_, err = c.Decode(enc)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// Histories recorded before the codec was turned on hold plain payloads;
// they must still decode (replay) unchanged, beside encrypted ones.
func TestUnencryptedPayloadsPassThroughDecode(t *testing.T) {
	t.Parallel()
	c := newCodec(t, fixedKey(t, "k1", 1))
	plain := jsonPayloads(t, "recorded before encryption", 7)
	plain = append(plain,
		&commonpb.Payload{Metadata: map[string][]byte{converter.MetadataEncoding: []byte("binary/plain")}, Data: []byte{1, 2}},
		&commonpb.Payload{}, // no metadata at all
	)
	enc, err := c.Encode(jsonPayloads(t, "encrypted"))
	require.NoError(t, err)
	mixed := append(append([]*commonpb.Payload{}, plain...), enc...)

	dec, err := c.Decode(mixed)
	require.NoError(t, err)
	for i, p := range plain {
		require.Same(t, p, dec[i], "payload %d is passed through as is", i)
	}
	var s string
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(dec[len(dec)-1], &s))
	require.Equal(t, "encrypted", s)
}

// The data converter is what clients and workers use: values go in and
// come out, and what is in between is encrypted.
func TestDataConverter(t *testing.T) {
	t.Parallel()
	c := newCodec(t, fixedKey(t, "k1", 1))
	dc := c.DataConverter()
	type spec struct{ Subject string }
	p, err := dc.ToPayload(spec{Subject: "Secret subject zebra"})
	require.NoError(t, err)
	require.Equal(t, EncodingEncrypted, string(p.Metadata[converter.MetadataEncoding]))
	require.NotContains(t, string(p.Data), "zebra")
	var got spec
	require.NoError(t, dc.FromPayload(p, &got))
	require.Equal(t, "Secret subject zebra", got.Subject)

	// A plain converter cannot read it.
	require.Error(t, converter.GetDefaultDataConverter().FromPayload(p, &got))
}

// Clients and activities get decryption failures as errors; workflow code
// gets a panic, so the SDK fails (and Temporal retries) the workflow task
// instead of failing the run.
func TestDataConverterPanicsInWorkflowCode(t *testing.T) {
	t.Parallel()
	underK1, err := newCodec(t, fixedKey(t, "k1", 1)).DataConverter().ToPayload("started under k1")
	require.NoError(t, err)
	current := newCodec(t, fixedKey(t, "k2", 2))
	dc := current.DataConverter()
	underK2, err := dc.ToPayload("written under k2")
	require.NoError(t, err)

	var s string
	var unknown *UnknownKeyError
	require.ErrorAs(t, dc.FromPayload(underK1, &s), &unknown)
	aware, ok := dc.(converter.ContextAware)
	require.True(t, ok, "the SDK asks a ContextAware converter for its workflow-code variant")
	require.ErrorAs(t, aware.WithContext(context.Background()).FromPayload(underK1, &s), &unknown, "activities and clients: an error")

	inWorkflow := aware.WithWorkflowContext(nil)
	require.NoError(t, inWorkflow.FromPayload(underK2, &s))
	require.Equal(t, "written under k2", s)
	func() {
		defer func() {
			p := recover()
			require.NotNil(t, p, "workflow code: a panic")
			err, ok := p.(error)
			require.True(t, ok, "panic value %v", p)
			require.ErrorAs(t, err, &unknown)
			require.Equal(t, "k1", unknown.KeyID)
		}()
		_ = inWorkflow.FromPayload(underK1, &s)
	}()
}

func TestFailureConverterEncryptsMessages(t *testing.T) {
	t.Parallel()
	c := newCodec(t, fixedKey(t, "k1", 1))
	fc := c.FailureConverter()
	f := fc.ErrorToFailure(temporal.NewApplicationError("render: unknown field in Secret subject zebra", "RenderError"))
	raw, err := proto.Marshal(f)
	require.NoError(t, err)
	require.NotContains(t, string(raw), "zebra", "the message is encrypted")
	require.Contains(t, string(raw), "RenderError", "the error type stays readable: retry policies match on it")

	back := fc.FailureToError(f)
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(back, &appErr))
	require.Equal(t, "RenderError", appErr.Type())
	require.Contains(t, appErr.Error(), "Secret subject zebra")
}

func TestNew(t *testing.T) {
	t.Parallel()
	_, err := New()
	require.ErrorContains(t, err, "no keys")
	_, err = New(fixedKey(t, "a", 1), fixedKey(t, "a", 2))
	require.ErrorContains(t, err, `"a" given twice`)
	_, err = New(Key{ID: "hand-made"})
	require.ErrorContains(t, err, "want 32 bytes")
}

func TestParseKeys(t *testing.T) {
	t.Parallel()
	k1 := bytes.Repeat([]byte{0xfb}, KeySize) // 0xfb... encodes with '+' and '/' in standard base64
	k2 := bytes.Repeat([]byte{2}, KeySize)
	std := base64.StdEncoding.EncodeToString
	for _, tc := range []struct {
		name    string
		raw     string
		wantIDs []string
		wantErr string
	}{
		{name: "one key", raw: "k1:" + std(k1), wantIDs: []string{"k1"}},
		{name: "newest first, spaces allowed", raw: " 2026-06 : " + std(k2) + " , 2026-01:" + std(k1), wantIDs: []string{"2026-06", "2026-01"}},
		{name: "unpadded", raw: "k1:" + base64.RawStdEncoding.EncodeToString(k1), wantIDs: []string{"k1"}},
		{name: "url-safe", raw: "k1:" + base64.URLEncoding.EncodeToString(k1), wantIDs: []string{"k1"}},
		{name: "url-safe unpadded", raw: "k1:" + base64.RawURLEncoding.EncodeToString(k1), wantIDs: []string{"k1"}},
		{name: "empty", raw: "", wantErr: "entry 1: want id:base64key"},
		{name: "no colon", raw: std(k1), wantErr: "entry 1: want id:base64key"},
		{name: "no id", raw: ":" + std(k1), wantErr: "entry 1: want id:base64key"},
		{name: "no key", raw: "k1:", wantErr: "entry 1: want id:base64key"},
		{name: "trailing comma", raw: "k1:" + std(k1) + ",", wantErr: "entry 2: want id:base64key"},
		{name: "not base64", raw: "k1:not*base64!", wantErr: `key "k1": the key material is not base64`},
		{name: "16-byte key", raw: "k1:" + std(k1[:16]), wantErr: `key "k1": want 32 bytes of key material, got 16`},
		{name: "33-byte key", raw: "k1:" + std(append(k1, 1)), wantErr: "got 33"},
		{name: "bad id", raw: "k 1:" + std(k1), wantErr: `key id "k 1"`},
		{name: "duplicate id", raw: "k1:" + std(k1) + ",k1:" + std(k2), wantErr: `key id "k1" is listed twice`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys, err := ParseKeys(tc.raw)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				for _, secret := range [][]byte{k1, k2} {
					require.NotContains(t, err.Error(), std(secret), "errors never repeat key material")
				}
				return
			}
			require.NoError(t, err)
			var ids []string
			for _, k := range keys {
				ids = append(ids, k.ID)
				require.Len(t, k.secret, KeySize)
			}
			require.Equal(t, tc.wantIDs, ids)
		})
	}
}

func TestGeneratedKeysRoundTripThroughTheirEntry(t *testing.T) {
	t.Parallel()
	a, err := GenerateKey("new")
	require.NoError(t, err)
	b, err := GenerateKey("new")
	require.NoError(t, err)
	require.NotEqual(t, a.secret, b.secret)

	parsed, err := ParseKeys(a.Entry())
	require.NoError(t, err)
	require.Equal(t, []Key{a}, parsed)

	_, err = GenerateKey("bad id")
	require.Error(t, err)
}

func TestKeysDoNotPrintTheirSecret(t *testing.T) {
	t.Parallel()
	k := fixedKey(t, "k1", 0x41) // "AAAA..." in ASCII
	for _, verb := range []string{"%v", "%+v", "%s", "%#v"} {
		out := fmt.Sprintf(verb, k)
		require.NotContains(t, out, strings.Repeat("A", 8), verb)
		require.NotContains(t, out, base64.StdEncoding.EncodeToString(k.secret), verb)
		require.Contains(t, out, "k1", verb)
	}
	out := fmt.Sprintf("%+v", struct{ Keys []Key }{[]Key{k}})
	require.NotContains(t, out, "65 65 65", "nested keys print their id too")
}
