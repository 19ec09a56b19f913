/*
 * Bulk NDJSON lines for a whole decompressed stored-fields chunk in one call (the backfill's hot path).
 *
 * Per live document the Python path decodes the stored fields, the Elasticsearch id, builds the action line
 * with orjson and wraps everything in objects: about 20 us of CPU per document, on the cores the target
 * needs. This does the same for every document of a chunk in C and returns one body and two int64 arrays.
 * It handles only the common shape (binary or string _id, optional string _routing, a one-line JSON
 * _source, nested children skipped); for anything else it returns None and the caller decodes the chunk in
 * Python, which also produces the proper errors. The output is byte for byte what the Python path writes
 * (tests/workers/rfs/test_bulk_lines.py checks it).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

enum { STRING = 0, BYTE_ARR = 1, INT = 2, FLOAT = 3, LONG = 4, DOUBLE = 5 };
enum { ID_NONE, ID_NUMERIC, ID_TEXT, ID_BASE64 };

typedef struct {
    int64_t doc;
    const unsigned char *id;
    Py_ssize_t id_len;
    int id_kind;
    Py_ssize_t id_out;       /* bytes of the id once encoded for JSON */
    const unsigned char *routing;
    Py_ssize_t routing_len;  /* -1: no routing */
    Py_ssize_t routing_out;
    const unsigned char *source;
    Py_ssize_t source_len;
} Doc;

static const char B64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
static const char ROUTING_KEY[] = ",\"routing\":\"";
#define ROUTING_KEY_LEN ((Py_ssize_t)(sizeof(ROUTING_KEY) - 1))
static const char ACTION_END[] = "}}\n";
#define ACTION_END_LEN ((Py_ssize_t)(sizeof(ACTION_END) - 1))

/* A VInt/VLong; -1 when it runs past the end or is too long. */
static inline int read_vint(const unsigned char *p, Py_ssize_t end, Py_ssize_t *pos, uint64_t *value) {
    uint64_t v = 0;
    int shift = 0;
    while (*pos < end) {
        unsigned char b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7F) << shift;
        if (b < 0x80) {
            *value = v;
            return 0;
        }
        shift += 7;
        if (shift > 63) return -1;
    }
    return -1;
}

/* JSON string length of ASCII text as orjson writes it; -1 for anything needing \u escapes or non-ASCII
 * (left to the Python path, which also validates UTF-8). */
static Py_ssize_t escaped_length(const unsigned char *s, Py_ssize_t n) {
    Py_ssize_t out = n;
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c < 0x20 || c >= 0x80) return -1;
        if (c == '"' || c == '\\') out++;
    }
    return out;
}

static char *write_escaped(char *w, const unsigned char *s, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\') *w++ = '\\';
        *w++ = (char)c;
    }
    return w;
}

/* Classify an Elasticsearch binary _id (Uid.encodeId) and size its text; 0 on success, -1 to fall back. */
static int plan_binary_id(Doc *d) {
    const unsigned char *raw = d->id;
    Py_ssize_t n = d->id_len;
    if (n == 0) return -1;
    if (raw[0] == 0xFE) {
        Py_ssize_t digits = 0;
        for (Py_ssize_t i = 1; i < n; i++) {
            unsigned char hi = raw[i] >> 4, lo = raw[i] & 0x0F;
            if (hi > 9) return -1;
            digits++;
            if (lo == 0x0F) break;
            if (lo > 9) return -1;
            digits++;
        }
        d->id_kind = ID_NUMERIC;
        d->id_out = digits;
        return 0;
    }
    if (raw[0] == 0xFF) {
        d->id_kind = ID_TEXT;
        d->id++;
        d->id_len--;
        d->id_out = escaped_length(d->id, d->id_len);
        return d->id_out < 0 ? -1 : 0;
    }
    if (raw[0] == 0xFD) {
        d->id++;
        d->id_len--;
    }
    d->id_kind = ID_BASE64;
    d->id_out = (d->id_len * 4 + 2) / 3;  /* unpadded */
    return 0;
}

static char *write_id(char *w, const Doc *d) {
    const unsigned char *s = d->id;
    Py_ssize_t n = d->id_len;
    if (d->id_kind == ID_NUMERIC) {
        for (Py_ssize_t i = 1; i < n; i++) {
            *w++ = (char)('0' + (s[i] >> 4));
            if ((s[i] & 0x0F) == 0x0F) break;
            *w++ = (char)('0' + (s[i] & 0x0F));
        }
        return w;
    }
    if (d->id_kind == ID_TEXT) return write_escaped(w, s, n);
    Py_ssize_t i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = ((uint32_t)s[i] << 16) | ((uint32_t)s[i + 1] << 8) | s[i + 2];
        *w++ = B64[(v >> 18) & 63];
        *w++ = B64[(v >> 12) & 63];
        *w++ = B64[(v >> 6) & 63];
        *w++ = B64[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)s[i] << 16;
        *w++ = B64[(v >> 18) & 63];
        *w++ = B64[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)s[i] << 16) | ((uint32_t)s[i + 1] << 8);
        *w++ = B64[(v >> 18) & 63];
        *w++ = B64[(v >> 12) & 63];
        *w++ = B64[(v >> 6) & 63];
    }
    return w;
}

/* Scan one document's stored fields. 1: emit it, 0: skip it (a nested child), -1: fall back to Python. */
static int scan_document(const unsigned char *p, Py_ssize_t len, Py_ssize_t count, long id_num, long uid_num,
                         long routing_num, long source_num, Doc *d) {
    Py_ssize_t pos = 0;
    int id_type = -1, source_type = -1, routing_type = -1;
    d->id = NULL;
    d->routing = NULL;
    d->routing_len = -1;
    d->source = NULL;
    for (Py_ssize_t f = 0; f < count; f++) {
        uint64_t info, v;
        if (read_vint(p, len, &pos, &info) < 0) return -1;
        unsigned kind = (unsigned)(info & 7);
        long number = (long)(info >> 3);
        if (kind == STRING || kind == BYTE_ARR) {
            if (read_vint(p, len, &pos, &v) < 0 || v > (uint64_t)(len - pos)) return -1;
            const unsigned char *value = p + pos;
            pos += (Py_ssize_t)v;
            if (number == uid_num) return -1;  /* Elasticsearch 5 type#id: the Python path splits it */
            if (number == id_num) {
                d->id = value;
                d->id_len = (Py_ssize_t)v;
                id_type = (int)kind;
            } else if (number == routing_num) {
                d->routing = value;
                d->routing_len = (Py_ssize_t)v;
                routing_type = (int)kind;
            } else if (number == source_num) {
                d->source = value;
                d->source_len = (Py_ssize_t)v;
                source_type = (int)kind;
            }
        } else if (kind == INT) {
            if (read_vint(p, len, &pos, &v) < 0) return -1;
        } else if (kind == FLOAT) {
            if (pos >= len) return -1;
            unsigned char b = p[pos];
            pos += b == 0xFF ? 5 : (b & 0x80) ? 1 : 4;
        } else if (kind == LONG) {
            if (pos >= len) return -1;
            unsigned char header = p[pos++];
            if ((header & 0x20) && read_vint(p, len, &pos, &v) < 0) return -1;
        } else if (kind == DOUBLE) {
            if (pos >= len) return -1;
            unsigned char b = p[pos];
            pos += b == 0xFF ? 9 : b == 0xFE ? 5 : (b & 0x80) ? 1 : 8;
        } else {
            return -1;
        }
        if (pos > len) return -1;
    }
    if (pos != len) return -1;
    if (d->id == NULL) return d->source == NULL ? 0 : -1;  /* no id and no source: a nested child */
    if (d->source == NULL || source_type != BYTE_ARR) return -1;  /* sourceless or recovery source */
    /* One-line JSON goes through untouched; anything else is re-serialised by the Python path. */
    if (d->source_len == 0 || d->source[0] != '{') return -1;
    if (memchr(d->source, '\n', (size_t)d->source_len) || memchr(d->source, '\r', (size_t)d->source_len)) return -1;
    if (id_type == BYTE_ARR) {
        if (plan_binary_id(d) < 0) return -1;
    } else {
        d->id_kind = ID_TEXT;
        d->id_out = escaped_length(d->id, d->id_len);
        if (d->id_out < 0) return -1;
    }
    if (d->routing != NULL) {
        if (routing_type != STRING) return -1;
        d->routing_out = escaped_length(d->routing, d->routing_len);
        if (d->routing_out < 0) return -1;
    }
    return 1;
}

static int bit_set(const Py_buffer *bits, int64_t doc, int *ok) {
    Py_ssize_t byte = (Py_ssize_t)(doc >> 3);
    if (byte >= bits->len) {
        *ok = 0;
        return 0;
    }
    return (((const unsigned char *)bits->buf)[byte] >> (doc & 7)) & 1;
}

static int int_list(PyObject *list, Py_ssize_t n, Py_ssize_t *out) {
    for (Py_ssize_t i = 0; i < n; i++) {
        out[i] = PyLong_AsSsize_t(PyList_GET_ITEM(list, i));
        if (out[i] < 0) {
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "negative field count or length");
            return -1;
        }
    }
    return 0;
}

PyDoc_STRVAR(encode_chunk_doc,
"encode_chunk(data, fields, lengths, doc_base, start_doc, live, soft, id_num, uid_num, routing_num, source_num,\n"
"             prefix) -> (body, docs, ends, source_bytes, nested) | None\n\n"
"The bulk lines of every live document of a decompressed stored-fields chunk numbered from doc_base and at\n"
"or after start_doc: body is the NDJSON (prefix, id, routing, '}}', source per document), docs and ends are\n"
"native int64 arrays (document numbers; end of each document's lines in body). None: some document needs\n"
"the Python path.");

static PyObject *encode_chunk(PyObject *self, PyObject *args) {
    Py_buffer data, prefix, live = {0}, soft = {0};
    PyObject *fields, *lengths, *live_obj, *soft_obj;
    Py_ssize_t doc_base, start_doc;
    long id_num, uid_num, routing_num, source_num;
    if (!PyArg_ParseTuple(args, "y*O!O!nnOOlllly*", &data, &PyList_Type, &fields, &PyList_Type, &lengths,
                          &doc_base, &start_doc, &live_obj, &soft_obj, &id_num, &uid_num, &routing_num,
                          &source_num, &prefix))
        return NULL;
    PyObject *result = NULL;
    Py_ssize_t *counts = NULL, *sizes = NULL;
    Doc *docs = NULL;
    int have_live = 0, have_soft = 0;
    Py_ssize_t n = PyList_GET_SIZE(fields);
    if (PyList_GET_SIZE(lengths) != n) {
        PyErr_SetString(PyExc_ValueError, "fields and lengths differ in length");
        goto done;
    }
    if (live_obj != Py_None) {
        if (PyObject_GetBuffer(live_obj, &live, PyBUF_SIMPLE) < 0) goto done;
        have_live = 1;
    }
    if (soft_obj != Py_None) {
        if (PyObject_GetBuffer(soft_obj, &soft, PyBUF_SIMPLE) < 0) goto done;
        have_soft = 1;
    }
    counts = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n ? n : 1));
    sizes = PyMem_Malloc(sizeof(Py_ssize_t) * (size_t)(n ? n : 1));
    docs = PyMem_Malloc(sizeof(Doc) * (size_t)(n ? n : 1));
    if (!counts || !sizes || !docs) {
        PyErr_NoMemory();
        goto done;
    }
    if (int_list(fields, n, counts) < 0 || int_list(lengths, n, sizes) < 0) goto done;

    const unsigned char *p = data.buf;
    Py_ssize_t offset = 0, emitted = 0, nested = 0, total = 0, source_bytes = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const unsigned char *doc_bytes = p + offset;
        if (sizes[i] > data.len - offset) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        offset += sizes[i];
        int64_t number = (int64_t)doc_base + i;
        if (number < start_doc) continue;
        int ok = 1;
        if (have_live && !bit_set(&live, number, &ok) && ok) continue;
        if (have_soft && bit_set(&soft, number, &ok) && ok) continue;
        if (!ok) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        Doc *d = &docs[emitted];
        int verdict = scan_document(doc_bytes, sizes[i], counts[i], id_num, uid_num, routing_num, source_num, d);
        if (verdict < 0) {
            result = Py_NewRef(Py_None);
            goto done;
        }
        if (verdict == 0) {
            nested++;
            continue;
        }
        d->doc = number;
        total += prefix.len + d->id_out + 1 + ACTION_END_LEN + d->source_len + 1;
        if (d->routing != NULL) total += ROUTING_KEY_LEN + d->routing_out + 1;
        source_bytes += d->source_len;
        emitted++;
    }
    if (offset != data.len) {
        result = Py_NewRef(Py_None);
        goto done;
    }

    PyObject *body = PyBytes_FromStringAndSize(NULL, total);
    PyObject *numbers = PyBytes_FromStringAndSize(NULL, emitted * (Py_ssize_t)sizeof(int64_t));
    PyObject *ends = PyBytes_FromStringAndSize(NULL, emitted * (Py_ssize_t)sizeof(int64_t));
    if (!body || !numbers || !ends) {
        Py_XDECREF(body);
        Py_XDECREF(numbers);
        Py_XDECREF(ends);
        goto done;
    }
    char *start = PyBytes_AS_STRING(body), *w = start;
    int64_t *doc_out = (int64_t *)PyBytes_AS_STRING(numbers), *end_out = (int64_t *)PyBytes_AS_STRING(ends);
    for (Py_ssize_t k = 0; k < emitted; k++) {
        const Doc *d = &docs[k];
        memcpy(w, prefix.buf, (size_t)prefix.len);
        w = write_id(w + prefix.len, d);
        *w++ = '"';
        if (d->routing != NULL) {
            memcpy(w, ROUTING_KEY, ROUTING_KEY_LEN);
            w = write_escaped(w + ROUTING_KEY_LEN, d->routing, d->routing_len);
            *w++ = '"';
        }
        memcpy(w, ACTION_END, ACTION_END_LEN);
        w += ACTION_END_LEN;
        memcpy(w, d->source, (size_t)d->source_len);
        w += d->source_len;
        *w++ = '\n';
        doc_out[k] = d->doc;
        end_out[k] = (int64_t)(w - start);
    }
    result = Py_BuildValue("(NNNnn)", body, numbers, ends, source_bytes, nested);

done:
    PyMem_Free(counts);
    PyMem_Free(sizes);
    PyMem_Free(docs);
    if (have_live) PyBuffer_Release(&live);
    if (have_soft) PyBuffer_Release(&soft);
    PyBuffer_Release(&data);
    PyBuffer_Release(&prefix);
    return result;
}

static PyMethodDef methods[] = {
    {"encode_chunk", encode_chunk, METH_VARARGS, encode_chunk_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_bulk_lines",
    "Bulk NDJSON lines for whole stored-fields chunks (the backfill's hot path).", -1, methods,
};

PyMODINIT_FUNC PyInit__bulk_lines(void) { return PyModule_Create(&module); }
