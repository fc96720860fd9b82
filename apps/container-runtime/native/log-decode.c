/*
 * Reading a container's json-file log back, in the container runtime's
 * process (a Node-API module). The monitor (shim.c, log_entry) writes every
 * line as {"log":"...","stream":"stdout","time":"<30 characters>"},
 * escaping only '"', '\' and control bytes; such lines are decoded here from
 * the file's bytes into a message of output, many at a time. A line in any
 * other shape is left to the caller (JSON.parse), which calls again after it.
 *
 * decode(src, start, end, out, outAt, flags, state): takes the whole lines of
 * src[start, end) into out from outAt, each after a timestamp when flags
 * asks for them, while they are of one stream. state (an Int32Array of 4)
 * holds on entry the stream of what out already holds (0: nothing), and on
 * return that stream, where the first line not taken starts, where out's
 * data ends, and why it stopped (enum stop).
 *
 * Every read and write is bounded by the buffers' lengths, checked here:
 * the file's content comes from a container, and is hostile.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <stdint.h>
#include <string.h>

enum stop {
	ENDED = 0,	/* no whole line is left */
	FULL = 1,	/* out has no room for the next line */
	SWITCHED = 2,	/* the next line is of the other stream */
	OTHER = 3,	/* the next line is not in the monitor's shape */
};

enum { WANT_STDOUT = 1, WANT_STDERR = 2, STAMPS = 4 };

#define PREFIX "{\"log\":\""
#define PREFIX_LENGTH 8
#define STREAM "\",\"stream\":\""
#define STREAM_LENGTH 12
#define TIME "\",\"time\":\""
#define TIME_LENGTH 10
#define STAMP_TIME_LENGTH 30
/* After the log: STREAM, "stdout" or "stderr", TIME, the time, then "}. */
#define SUFFIX_LENGTH (STREAM_LENGTH + 6 + TIME_LENGTH + STAMP_TIME_LENGTH + 2)
/* Before a line when timestamps are asked for: "[Jan _2 15:04:05.000] ". */
#define STAMP_LENGTH 22

static const char MONTHS[] = "JanFebMarAprMayJunJulAugSepOctNovDec";

static int hex(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int digits(const uint8_t *t, int at, int n)
{
	for (int i = at; i < at + n; i++)
		if (t[i] < '0' || t[i] > '9')
			return 0;
	return 1;
}

/* Whether a time is in the monitor's shape, "2026-12-04T03:24:37.123456789Z" (UTC, nanoseconds). */
static int time_ok(const uint8_t *t)
{
	int month = (t[5] - '0') * 10 + (t[6] - '0');
	return digits(t, 0, 4) && t[4] == '-' && digits(t, 5, 2) && month >= 1 && month <= 12 && t[7] == '-' && digits(t, 8, 2) && t[10] == 'T' &&
	       digits(t, 11, 2) && t[13] == ':' && digits(t, 14, 2) && t[16] == ':' && digits(t, 17, 2) && t[19] == '.' && digits(t, 20, 9) && t[29] == 'Z';
}

/*
 * Decodes the line [l, e) (without its newline) into out, which has room
 * for e - l bytes (a decoded log is never longer than its line). Returns
 * the decoded length, or -1 for a line not in the monitor's shape.
 */
static long decode_line(const uint8_t *l, const uint8_t *e, uint8_t *out, int *stream, const uint8_t **time)
{
	if (e - l < PREFIX_LENGTH + SUFFIX_LENGTH || memcmp(l, PREFIX, PREFIX_LENGTH))
		return -1;
	const uint8_t *end = e - SUFFIX_LENGTH;
	const uint8_t *s = end + STREAM_LENGTH;
	if (memcmp(end, STREAM, STREAM_LENGTH) || memcmp(s + 6, TIME, TIME_LENGTH) || e[-2] != '"' || e[-1] != '}')
		return -1;
	if (!memcmp(s, "stdout", 6))
		*stream = 1;
	else if (!memcmp(s, "stderr", 6))
		*stream = 2;
	else
		return -1;
	*time = s + 6 + TIME_LENGTH;
	if (!time_ok(*time))
		return -1;
	const uint8_t *p = l + PREFIX_LENGTH;
	uint8_t *o = out;
	for (;;) {
		/* The next escape, and no bare quote before it (memchr: most lines have neither). */
		const uint8_t *q = memchr(p, '\\', end - p);
		if (!q)
			q = end;
		if (memchr(p, '"', q - p))
			return -1;
		memcpy(o, p, q - p);
		o += q - p;
		if (q == end)
			return o - out;
		/* A bare quote (checked above) would have ended the log's string there: another writer's line. */
		if (q + 1 >= end)
			return -1;
		switch (q[1]) {
		case 'n': *o++ = '\n'; break;
		case 'r': *o++ = '\r'; break;
		case 't': *o++ = '\t'; break;
		case 'b': *o++ = '\b'; break;
		case 'f': *o++ = '\f'; break;
		case '"': case '\\': case '/': *o++ = q[1]; break;
		case 'u': {
			if (end - q < 6)
				return -1;
			int a = hex(q[2]), b = hex(q[3]), c = hex(q[4]), d = hex(q[5]);
			/* Code points past a byte come from other writers (the monitor escapes control bytes only). */
			if (a != 0 || b != 0 || c < 0 || c > 7 || d < 0)
				return -1;
			*o++ = (uint8_t)(c << 4 | d);
			p = q + 6;
			continue;
		}
		default:
			return -1;
		}
		p = q + 2;
	}
}

/* Docker 1.0's stamp, "[Jan _2 15:04:05.000] ", from a time in the monitor's shape. */
static void stamp(const uint8_t *t, uint8_t *o)
{
	int month = (t[5] - '0') * 10 + (t[6] - '0');
	o[0] = '[';
	memcpy(o + 1, MONTHS + 3 * (month - 1), 3);
	o[4] = ' ';
	o[5] = t[8] == '0' ? ' ' : t[8];
	o[6] = t[9];
	o[7] = ' ';
	memcpy(o + 8, t + 11, 8);
	o[16] = '.';
	memcpy(o + 17, t + 20, 3);
	o[20] = ']';
	o[21] = ' ';
}

static napi_value decode(napi_env env, napi_callback_info info)
{
	size_t argc = 7;
	napi_value argv[7];
	uint8_t *src, *out;
	size_t src_length, out_length, state_length;
	int32_t start, end, at, flags;
	napi_typedarray_type type;
	void *state_data;
	if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc != 7 ||
	    napi_get_buffer_info(env, argv[0], (void **)&src, &src_length) != napi_ok ||
	    napi_get_value_int32(env, argv[1], &start) != napi_ok || napi_get_value_int32(env, argv[2], &end) != napi_ok ||
	    napi_get_buffer_info(env, argv[3], (void **)&out, &out_length) != napi_ok ||
	    napi_get_value_int32(env, argv[4], &at) != napi_ok || napi_get_value_int32(env, argv[5], &flags) != napi_ok ||
	    napi_get_typedarray_info(env, argv[6], &type, &state_length, &state_data, NULL, NULL) != napi_ok || type != napi_int32_array || state_length < 4) {
		napi_throw_type_error(env, NULL, "decode(src, start, end, out, outAt, flags, state)");
		return NULL;
	}
	if (start < 0 || end < start || (size_t)end > src_length || at < 0 || (size_t)at > out_length) {
		napi_throw_range_error(env, NULL, "decode: a position outside its buffer");
		return NULL;
	}
	int32_t *st = state_data;
	int batch = st[0];
	size_t stamp_length = flags & STAMPS ? STAMP_LENGTH : 0;
	size_t pos = start, o = at;
	enum stop why;
	for (;;) {
		const uint8_t *nl = memchr(src + pos, '\n', end - pos);
		if (!nl) {
			why = ENDED;
			break;
		}
		size_t line_end = nl - src;
		if (line_end == pos) {
			pos++;
			continue;
		}
		if (out_length - o < stamp_length + (line_end - pos)) {
			why = FULL;
			break;
		}
		int stream;
		const uint8_t *time;
		long n = decode_line(src + pos, nl, out + o + stamp_length, &stream, &time);
		if (n < 0) {
			why = OTHER;
			break;
		}
		if (!(flags & (stream == 1 ? WANT_STDOUT : WANT_STDERR))) {
			pos = line_end + 1;
			continue;
		}
		if (batch && stream != batch) {
			why = SWITCHED;
			break;
		}
		if (stamp_length)
			stamp(time, out + o);
		batch = stream;
		o += stamp_length + n;
		pos = line_end + 1;
	}
	st[0] = batch;
	st[1] = (int32_t)pos;
	st[2] = (int32_t)o;
	st[3] = why;
	return NULL;
}

NAPI_MODULE_INIT()
{
	napi_value fn;
	if (napi_create_function(env, "decode", NAPI_AUTO_LENGTH, decode, NULL, &fn) != napi_ok ||
	    napi_set_named_property(env, exports, "decode", fn) != napi_ok)
		return NULL;
	return exports;
}
