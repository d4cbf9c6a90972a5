/* cli_util.c — see cli_util.h. */
#include "cli_util.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ponder/gguf.h"
#include "testutil.h"

char *cu_temp_file(const char *text, size_t len)
{
    char path[] = "/tmp/ponder-chat-in-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    size_t done = 0;
    while (done < len) {
        ssize_t w = write(fd, text + done, len - done);
        if (w <= 0)
            break;
        done += (size_t)w;
    }
    close(fd);
    return strdup(path);
}

char *cu_model_with_template(const char *tmpl)
{
    ponder_error err = { 0 };
    ponder_gguf *g = NULL;
    ponder_gguf_writer *w = NULL;
    char *path = NULL;
    if (ponder_gguf_open(tu_shared("models/stories260K/stories260K.gguf"), &g, &err) != PONDER_OK ||
        ponder_gguf_writer_create(&w, &err) != PONDER_OK || ponder_gguf_writer_copy_kv(w, g, &err) != PONDER_OK ||
        ponder_gguf_writer_set_str(w, "tokenizer.chat_template", tmpl, &err) != PONDER_OK)
        goto done;
    for (int64_t i = 0; i < ponder_gguf_n_tensors(g); i++) {
        const ponder_gguf_tensor *t = ponder_gguf_tensor_at(g, i);
        if (ponder_gguf_writer_add_tensor(w, t->name, t->type, t->n_dims, t->ne, t->data, &err) != PONDER_OK)
            goto done;
    }
    char tmp[] = "/tmp/ponder-chat-model-XXXXXX";
    int fd = mkstemp(tmp);
    if (fd < 0)
        goto done;
    close(fd);
    if (ponder_gguf_writer_write(w, tmp, &err) != PONDER_OK) {
        unlink(tmp);
        goto done;
    }
    path = strdup(tmp);
done:
    if (!path)
        fprintf(stderr, "cu_model_with_template: %s\n", err.msg);
    ponder_gguf_writer_free(w);
    ponder_gguf_free(g);
    return path;
}
