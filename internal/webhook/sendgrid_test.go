package webhook

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/sendgrid/sendgrid-go/helpers/eventwebhook"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The signed-request vector from sendgrid-go's helpers/eventwebhook tests:
// verification key, header values and body bytes of a signed dropped event.
// The body is compact JSON followed by "\r\n", as SendGrid sends it, and the
// CRLF is part of what is signed, which is why the raw body must reach Verify
// untouched.
const (
	sgVectorPublicKey = "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flpVKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g=="
	sgVectorSignature = "MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIqHh89M15TluLtEZtM="
	sgVectorTimestamp = "1600112502"
	sgVectorBody      = `[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address","sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA","sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C-9.0","smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>","timestamp":1600112492}]` + "\r\n"
)

type sgSigner struct {
	priv      *ecdsa.PrivateKey
	publicB64 string
}

func newSGSigner(t *testing.T) sgSigner {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	der, err := x509.MarshalPKIXPublicKey(&priv.PublicKey)
	require.NoError(t, err)
	return sgSigner{priv: priv, publicB64: base64.StdEncoding.EncodeToString(der)}
}

// sign does what SendGrid does: ECDSA P-256 over SHA-256(timestamp || body),
// ASN.1 DER, base64.
func (s sgSigner) sign(t *testing.T, timestamp string, body []byte) string {
	t.Helper()
	digest := sha256.Sum256(append([]byte(timestamp), body...))
	sig, err := ecdsa.SignASN1(rand.Reader, s.priv, digest[:])
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(sig)
}

func unixString(t time.Time) string { return strconv.FormatInt(t.Unix(), 10) }

func TestSendGridVerify_RealSendGridVector(t *testing.T) {
	v, err := NewSendGridVerifier(sgVectorPublicKey, 5*time.Minute)
	require.NoError(t, err)
	now := time.Unix(1600112502, 0).Add(30 * time.Second)

	require.NoError(t, v.Verify(sgVectorSignature, sgVectorTimestamp, []byte(sgVectorBody), now))

	// Dropping the trailing CRLF (as a body re-serialiser or TrimSpace would)
	// breaks the signature.
	err = v.Verify(sgVectorSignature, sgVectorTimestamp, []byte(sgVectorBody[:len(sgVectorBody)-2]), now)
	assert.ErrorIs(t, err, ErrBadSignature)

	// Replayed a day later: genuine, but stale.
	err = v.Verify(sgVectorSignature, sgVectorTimestamp, []byte(sgVectorBody), now.Add(24*time.Hour))
	assert.ErrorIs(t, err, ErrStaleTimestamp)
	assert.NotErrorIs(t, err, ErrBadSignature)

	// And the vector's body parses.
	events, err := ParseSendGridEvents([]byte(sgVectorBody))
	require.NoError(t, err)
	require.Len(t, events, 1)
	assert.Equal(t, "dropped", events[0].Event)
	assert.Equal(t, KindEmailDropped, events[0].Kind())
	assert.Equal(t, "Bounced Address", events[0].Reason)
	assert.Equal(t, int64(1600112492), events[0].Timestamp)
	assert.Empty(t, events[0].CustomArgs, "smtp-id is SendGrid's, not a custom arg")
}

func TestSendGridVerify_GeneratedKey(t *testing.T) {
	signer := newSGSigner(t)
	other := newSGSigner(t)
	const maxAge = 5 * time.Minute
	v, err := NewSendGridVerifier(signer.publicB64, maxAge)
	require.NoError(t, err)

	now := time.Date(2026, 3, 14, 15, 9, 26, 0, time.UTC)
	ts := unixString(now)
	body := []byte(`[{"email":"a@example.com","event":"delivered","timestamp":1773500966,"tutti_message_id":"msg_1"}]` + "\r\n")
	sig := signer.sign(t, ts, body)

	t.Run("valid", func(t *testing.T) {
		assert.NoError(t, v.Verify(sig, ts, body, now))
	})
	t.Run("valid at the edges of the window", func(t *testing.T) {
		assert.NoError(t, v.Verify(sig, ts, body, now.Add(maxAge)))
		assert.NoError(t, v.Verify(sig, ts, body, now.Add(-maxAge)))
	})

	tampered := append([]byte(nil), body...)
	tampered[len(`[{"email":"`)] = 'b'

	badCases := []struct {
		name      string
		sig, ts   string
		body      []byte
		now       time.Time
		wantErr   error
		notWanted error
	}{
		{name: "tampered body", sig: sig, ts: ts, body: tampered, now: now, wantErr: ErrBadSignature},
		{name: "body with extra byte", sig: sig, ts: ts, body: append(append([]byte(nil), body...), ' '), now: now, wantErr: ErrBadSignature},
		{name: "signed by another key", sig: other.sign(t, ts, body), ts: ts, body: body, now: now, wantErr: ErrBadSignature},
		// The header timestamp is fresh but is not the one that was signed:
		// moving a captured request into the window must not work.
		{name: "timestamp header swapped", sig: sig, ts: unixString(now.Add(time.Second)), body: body, now: now, wantErr: ErrBadSignature},
		{name: "timestamp reformatted", sig: sig, ts: "0" + ts, body: body, now: now, wantErr: ErrBadSignature},
		{name: "stale", sig: sig, ts: ts, body: body, now: now.Add(maxAge + time.Second), wantErr: ErrStaleTimestamp, notWanted: ErrBadSignature},
		{name: "far future", sig: sig, ts: ts, body: body, now: now.Add(-maxAge - time.Second), wantErr: ErrStaleTimestamp, notWanted: ErrBadSignature},
		{name: "missing signature", sig: "", ts: ts, body: body, now: now, wantErr: ErrMissingSignature},
		{name: "missing timestamp", sig: sig, ts: "", body: body, now: now, wantErr: ErrMissingSignature},
		{name: "both missing", sig: "", ts: "", body: body, now: now, wantErr: ErrMissingSignature},
		{name: "signature not base64", sig: "not base64!", ts: ts, body: body, now: now, wantErr: ErrBadSignature},
		{name: "signature not DER", sig: base64.StdEncoding.EncodeToString([]byte("garbage")), ts: ts, body: body, now: now, wantErr: ErrBadSignature},
		{name: "signature with trailing bytes", sig: appendB64(t, sig, 0x00), ts: ts, body: body, now: now, wantErr: ErrBadSignature},
		{name: "timestamp not a number", sig: sig, ts: "yesterday", body: body, now: now, wantErr: ErrBadSignature},
		{name: "timestamp with sign", sig: sig, ts: "+" + ts, body: body, now: now, wantErr: ErrBadSignature},
		{name: "timestamp overflows int64", sig: sig, ts: "99999999999999999999", body: body, now: now, wantErr: ErrBadSignature},
	}
	for _, tc := range badCases {
		t.Run(tc.name, func(t *testing.T) {
			err := v.Verify(tc.sig, tc.ts, tc.body, tc.now)
			require.Error(t, err)
			assert.ErrorIs(t, err, tc.wantErr)
			if tc.notWanted != nil {
				assert.NotErrorIs(t, err, tc.notWanted)
			}
		})
	}

	t.Run("signed far in the future is stale, not overflowed into the window", func(t *testing.T) {
		huge := "9223372036854775807"
		err := v.Verify(signer.sign(t, huge, body), huge, body, now)
		assert.ErrorIs(t, err, ErrStaleTimestamp)
	})

	t.Run("empty body is still signed", func(t *testing.T) {
		assert.NoError(t, v.Verify(signer.sign(t, ts, nil), ts, nil, now))
		assert.ErrorIs(t, v.Verify(signer.sign(t, ts, nil), ts, []byte("[]"), now), ErrBadSignature)
	})
}

// appendB64 decodes a base64 string, appends bytes and re-encodes.
func appendB64(t *testing.T, b64 string, extra ...byte) string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(b64)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(append(raw, extra...))
}

// The SDK's verifier and ours must agree on what SendGrid signs.
func TestSendGridVerify_AgreesWithSDK(t *testing.T) {
	signer := newSGSigner(t)
	v, err := NewSendGridVerifier(signer.publicB64, time.Hour)
	require.NoError(t, err)
	sdkKey, err := eventwebhook.ConvertPublicKeyBase64ToECDSA(signer.publicB64)
	require.NoError(t, err)

	now := time.Unix(1700000000, 0)
	ts := unixString(now)
	bodies := []string{"", "[]", `[{"event":"open","sg_machine_open":true}]` + "\r\n", "\u00e9\u4e2d\U0001F600"}
	for _, body := range bodies {
		sig := signer.sign(t, ts, []byte(body))
		ok, err := eventwebhook.VerifySignature(sdkKey, []byte(body), sig, ts)
		require.NoError(t, err)
		assert.True(t, ok, "SDK rejects a signature made the way the test signs")
		assert.NoError(t, v.Verify(sig, ts, []byte(body), now))

		ok, err = eventwebhook.VerifySignature(sdkKey, []byte(body+"x"), sig, ts)
		require.NoError(t, err)
		assert.False(t, ok)
		assert.ErrorIs(t, v.Verify(sig, ts, []byte(body+"x"), now), ErrBadSignature)
	}

	vectorKey, err := eventwebhook.ConvertPublicKeyBase64ToECDSA(sgVectorPublicKey)
	require.NoError(t, err)
	ok, err := eventwebhook.VerifySignature(vectorKey, []byte(sgVectorBody), sgVectorSignature, sgVectorTimestamp)
	require.NoError(t, err)
	assert.True(t, ok, "the vector body in this file must be byte-identical to the SDK's")
}

func TestNewSendGridVerifier_Keys(t *testing.T) {
	signer := newSGSigner(t)

	t.Run("base64 DER with surrounding whitespace", func(t *testing.T) {
		_, err := NewSendGridVerifier("  "+signer.publicB64+"\n", time.Minute)
		assert.NoError(t, err)
	})
	t.Run("PEM", func(t *testing.T) {
		der, err := base64.StdEncoding.DecodeString(signer.publicB64)
		require.NoError(t, err)
		pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
		v, err := NewSendGridVerifier(pemKey, time.Minute)
		require.NoError(t, err)
		now := time.Unix(1700000000, 0)
		assert.NoError(t, v.Verify(signer.sign(t, unixString(now), []byte("x")), unixString(now), []byte("x"), now))
	})

	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	privDER, err := x509.MarshalPKCS8PrivateKey(signer.priv)
	require.NoError(t, err)

	bad := []struct {
		name, key, wantMsg string
	}{
		{"empty", "", "empty"},
		{"blank", " \n\t", "empty"},
		{"not base64", "not-a-key!!", "base64"},
		{"base64 but not DER", base64.StdEncoding.EncodeToString([]byte("hello")), "DER"},
		{"RSA", pkixB64(t, &rsaKey.PublicKey), "ECDSA P-256"},
		{"Ed25519", pkixB64(t, edPub), "ECDSA P-256"},
		{"ECDSA P-384", pkixB64(t, &p384.PublicKey), "P-384"},
		{"private key instead of public", base64.StdEncoding.EncodeToString(privDER), "DER"},
		{"PEM of the wrong type", string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER})), "PUBLIC KEY"},
		{"broken PEM", "-----BEGIN PUBLIC KEY-----\nAAAA", "PEM"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			v, err := NewSendGridVerifier(tc.key, time.Minute)
			require.Error(t, err)
			assert.Nil(t, v)
			assert.Contains(t, err.Error(), tc.wantMsg)
		})
	}

	t.Run("non-positive maxAge", func(t *testing.T) {
		for _, d := range []time.Duration{0, -time.Second} {
			_, err := NewSendGridVerifier(signer.publicB64, d)
			assert.Error(t, err)
		}
	})
}

func pkixB64(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return base64.StdEncoding.EncodeToString(der)
}

// sgDocsSample is based on SendGrid's documented Event Webhook example (one
// event of each kind), extended with what real Tutti traffic carries: custom
// args flattened into each event, both bounce types with classifications, a
// machine open, a category array and nested SendGrid fields (tls, pool,
// url_offset) that must not be mistaken for custom args.
const sgDocsSample = `[
  {"email":"example@test.com","timestamp":1513299569,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"processed","category":"cat facts","sg_event_id":"sg_event_id","sg_message_id":"sg_message_id",
   "tutti_message_id":"msg_01","tutti_journey_id":"jrn_7","tutti_step_id":"step_3","tutti_contact_id":"ct_42"},
  {"email":"example@test.com","timestamp":1513299569,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"deferred","ip":"168.1.1.1","category":"cat facts","sg_event_id":"sg_event_id","sg_message_id":"sg_message_id","response":"400 try again later","attempt":"5","tutti_message_id":"msg_01"},
  {"email":"example@test.com","timestamp":1513299569,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"delivered","ip":"168.1.1.1","category":["cat facts","newsletter"],"sg_event_id":"sg_event_id","sg_message_id":"sg_message_id","response":"250 OK","tls":1,"pool":{"name":"new_MY_test","id":210},"tutti_message_id":"msg_01"},
  {"email":"example@test.com","timestamp":1513299569,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"open","sg_machine_open":false,"category":"cat facts","sg_event_id":"sg_event_id","sg_message_id":"sg_message_id","useragent":"Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)","ip":"255.255.255.255","tutti_message_id":"msg_01"},
  {"email":"example@test.com","timestamp":1513299570,"event":"open","sg_machine_open":true,"sg_event_id":"sg_event_id_mpp","sg_message_id":"sg_message_id","useragent":"Mozilla/5.0","ip":"17.58.0.1","tutti_message_id":"msg_01"},
  {"email":"example@test.com","timestamp":1513299569,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"click","category":"cat facts","sg_event_id":"sg_event_id","sg_message_id":"sg_message_id","useragent":"Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)","ip":"255.255.255.255","url":"http://www.sendgrid.com/","url_offset":{"index":0,"type":"html"},"tutti_message_id":"msg_01"},
  {"email":"example@test.com","timestamp":1513299569,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","bounce_classification":"Invalid Address","event":"bounce","ip":"168.1.1.1","category":"cat facts","sg_event_id":"sg_event_id","sg_message_id":"sg_message_id","reason":"500 unknown recipient","status":"5.0.0","type":"bounce","tutti_message_id":"msg_01"},
  {"email":"example@test.com","timestamp":1513299569,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","bounce_classification":"Reputation","event":"bounce","ip":"168.1.1.1","sg_event_id":"sg_event_id","sg_message_id":"sg_message_id","reason":"550 5.7.1 blocked by policy","status":"5.7.1","type":"blocked","tutti_message_id":"msg_01"},
  {"email":"example@test.com","timestamp":1513299569,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"dropped","category":"cat facts","sg_event_id":"sg_event_id","sg_message_id":"sg_message_id","reason":"Bounced Address","status":"5.0.0","tutti_message_id":"msg_01"},
  {"email":"example@test.com","timestamp":1513299569,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"spamreport","sg_event_id":"sg_event_id","sg_message_id":"sg_message_id","tutti_message_id":"msg_01"},
  {"email":"example@test.com","timestamp":1513299569,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"unsubscribe","category":"cat facts","sg_event_id":"sg_event_id","sg_message_id":"sg_message_id","tutti_message_id":"msg_01"},
  {"email":"example@test.com","timestamp":1513299569,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"group_unsubscribe","category":"cat facts","sg_event_id":"sg_event_id","sg_message_id":"sg_message_id","useragent":"Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)","ip":"255.255.255.255","url":"http://www.sendgrid.com/","asm_group_id":10,"tutti_message_id":"msg_01"},
  {"email":"example@test.com","timestamp":1513299569,"smtp-id":"<14c5d75ce93.dfd.64b469@ismtpd-555>","event":"group_resubscribe","category":"cat facts","sg_event_id":"sg_event_id","sg_message_id":"sg_message_id","useragent":"Mozilla/4.0 (compatible; MSIE 6.1; Windows XP; .NET CLR 1.1.4322; .NET CLR 2.0.50727)","ip":"000.000.000.000","url":"http://www.sendgrid.com/","asm_group_id":10}
]`

func TestParseSendGridEvents_DocsSample(t *testing.T) {
	events, err := ParseSendGridEvents([]byte(sgDocsSample))
	require.NoError(t, err)
	require.Len(t, events, 13)

	wantKinds := []string{
		KindEmailProcessed, KindEmailDeferred, KindEmailDelivered, KindEmailOpened, KindEmailOpened,
		KindEmailClicked, KindEmailBounced, KindEmailBounced, KindEmailDropped, KindEmailSpamReported,
		KindEmailUnsubscribed, KindEmailGroupUnsubscribe, "",
	}
	for i, e := range events {
		assert.Equal(t, wantKinds[i], e.Kind(), "event %d (%s)", i, e.Event)
		assert.Equal(t, "example@test.com", e.Email)
		if i < 12 {
			assert.Equal(t, "msg_01", e.MessageID(), "event %d", i)
		}
	}

	processed := events[0]
	assert.Equal(t, map[string]string{
		CustomArgMessageID: "msg_01",
		CustomArgJourneyID: "jrn_7",
		CustomArgStepID:    "step_3",
		CustomArgContactID: "ct_42",
	}, processed.CustomArgs, "only our custom args, none of SendGrid's own fields")
	assert.Equal(t, int64(1513299569), processed.Timestamp)
	assert.Equal(t, time.Date(2017, 12, 15, 0, 59, 29, 0, time.UTC), processed.Time())
	assert.Equal(t, "sg_event_id", processed.SGEventID)
	assert.Equal(t, "sg_message_id", processed.SGMessageID)
	assert.Equal(t, []string{"cat facts"}, processed.Categories)

	deferred := events[1]
	assert.Equal(t, "400 try again later", deferred.Response)
	assert.Equal(t, "168.1.1.1", deferred.IP)
	assert.Equal(t, map[string]string{CustomArgMessageID: "msg_01"}, deferred.CustomArgs, "attempt is SendGrid's")

	delivered := events[2]
	assert.Equal(t, []string{"cat facts", "newsletter"}, delivered.Categories)
	assert.Equal(t, map[string]string{CustomArgMessageID: "msg_01"}, delivered.CustomArgs, "tls and pool are not custom args")

	humanOpen, machineOpen := events[3], events[4]
	assert.False(t, humanOpen.IsMachineOpen())
	assert.True(t, machineOpen.IsMachineOpen())
	assert.True(t, machineOpen.SGMachineOpen)
	assert.Equal(t, "Mozilla/5.0", machineOpen.UserAgent)

	click := events[5]
	assert.Equal(t, "http://www.sendgrid.com/", click.URL)
	assert.False(t, click.IsMachineOpen())
	assert.Equal(t, map[string]string{CustomArgMessageID: "msg_01"}, click.CustomArgs)

	hard, blocked := events[6], events[7]
	assert.True(t, hard.HardBounce())
	assert.Equal(t, "bounce", hard.Type)
	assert.Equal(t, "Invalid Address", hard.BounceClassification)
	assert.Equal(t, "500 unknown recipient", hard.Reason)
	assert.Equal(t, "5.0.0", hard.Status)
	assert.False(t, blocked.HardBounce(), "a block is about the message, not the address")
	assert.Equal(t, "blocked", blocked.Type)
	assert.Equal(t, "Reputation", blocked.BounceClassification)

	dropped := events[8]
	assert.False(t, dropped.HardBounce(), "dropped is not a bounce event even with a 5.x status")

	groupUnsub := events[11]
	assert.Equal(t, int64(10), groupUnsub.ASMGroupID)
	assert.Equal(t, "http://www.sendgrid.com/", groupUnsub.URL)

	resub := events[12]
	assert.Equal(t, "group_resubscribe", resub.Event)
	assert.Empty(t, resub.Kind())
	assert.Empty(t, resub.MessageID(), "no custom args: nil map lookup is safe")
}

func TestSendGridEvent_KindTable(t *testing.T) {
	cases := map[string]string{
		"processed":         "email.processed",
		"delivered":         "email.delivered",
		"open":              "email.opened",
		"click":             "email.clicked",
		"bounce":            "email.bounced",
		"dropped":           "email.dropped",
		"spamreport":        "email.spam_reported",
		"unsubscribe":       "email.unsubscribed",
		"group_unsubscribe": "email.group_unsubscribed",
		"deferred":          "email.deferred",
		"group_resubscribe": "",
		"Delivered":         "", // SendGrid names are lowercase; no guessing
		"":                  "",
	}
	for event, want := range cases {
		assert.Equal(t, want, SendGridEvent{Event: event}.Kind(), "event %q", event)
	}
}

func TestSendGridEvent_Predicates(t *testing.T) {
	assert.True(t, SendGridEvent{Event: "bounce", Type: "bounce"}.HardBounce())
	assert.False(t, SendGridEvent{Event: "bounce", Type: "blocked"}.HardBounce())
	assert.False(t, SendGridEvent{Event: "bounce"}.HardBounce(), "untyped bounce is not assumed hard")
	assert.False(t, SendGridEvent{Event: "deferred", Type: "bounce"}.HardBounce())

	assert.True(t, SendGridEvent{Event: "open", SGMachineOpen: true}.IsMachineOpen())
	assert.False(t, SendGridEvent{Event: "open"}.IsMachineOpen())
	assert.False(t, SendGridEvent{Event: "click", SGMachineOpen: true}.IsMachineOpen())
}

func TestParseSendGridEvents_LenientFieldTypes(t *testing.T) {
	body := `[{"event":"open","timestamp":"1513299569","asm_group_id":"10","sg_machine_open":"true",
	           "email":null,"category":null,"custom_number":5,"custom_null":null,"custom_obj":{"a":"b"},"tutti_message_id":"m"},
	          {"event":"delivered","timestamp":1513299569.0}]`
	events, err := ParseSendGridEvents([]byte(body))
	require.NoError(t, err)
	require.Len(t, events, 2)
	assert.Equal(t, int64(1513299569), events[0].Timestamp)
	assert.Equal(t, int64(10), events[0].ASMGroupID)
	assert.True(t, events[0].IsMachineOpen())
	assert.Empty(t, events[0].Email)
	assert.Nil(t, events[0].Categories)
	assert.Equal(t, map[string]string{"tutti_message_id": "m"}, events[0].CustomArgs,
		"custom args are strings; other unknown values are ignored")
	assert.Equal(t, int64(1513299569), events[1].Timestamp)
	assert.Nil(t, events[1].CustomArgs)
}

func TestParseSendGridEvents_Errors(t *testing.T) {
	cases := map[string]string{
		"empty body":              "",
		"whitespace":              "  \r\n",
		"object, not array":       `{"event":"open"}`,
		"null":                    `null`,
		"not JSON":                `[{"event":`,
		"trailing garbage":        `[] []`,
		"null element":            `[null]`,
		"string element":          `["open"]`,
		"timestamp not a number":  `[{"event":"open","timestamp":"yesterday"}]`,
		"timestamp fractional":    `[{"event":"open","timestamp":1.5}]`,
		"timestamp out of range":  `[{"event":"open","timestamp":1e300}]`,
		"event not a string":      `[{"event":7}]`,
		"machine open not a bool": `[{"event":"open","sg_machine_open":"maybe"}]`,
		"category not strings":    `[{"event":"open","category":[1,2]}]`,
		"asm_group_id not int":    `[{"event":"group_unsubscribe","asm_group_id":{"id":1}}]`,
		"second event bad":        `[{"event":"open"},{"event":"open","timestamp":[]}]`,
	}
	for name, body := range cases {
		t.Run(name, func(t *testing.T) {
			events, err := ParseSendGridEvents([]byte(body))
			assert.ErrorIs(t, err, ErrMalformedPayload)
			assert.Nil(t, events)
		})
	}

	t.Run("empty array is fine", func(t *testing.T) {
		events, err := ParseSendGridEvents([]byte(" [ ]\r\n"))
		require.NoError(t, err)
		assert.Empty(t, events)
	})
	t.Run("error names the event and field", func(t *testing.T) {
		_, err := ParseSendGridEvents([]byte(`[{"event":"open"},{"event":"open","timestamp":[]}]`))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "event 1")
		assert.Contains(t, err.Error(), `"timestamp"`)
		assert.True(t, errors.Is(err, ErrMalformedPayload))
	})
}
