/* Four ranks of one SPMD program through libnrt's C ABI, as a process that drives several
 * NeuronCores does it: each rank loaded with nrt_load_collectives(neff, vnc=k, -1, k, 4),
 * its tensors allocated on its own core, and every rank's nrt_execute called on its own
 * thread (a rank blocks in its collectives until the others arrive).
 *
 * usage: collectives MODEL.hlo   (an all-reduce sum of f32[4] over every core) */
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int NRT_STATUS;
typedef struct nrt_model nrt_model_t;
typedef struct nrt_tensor nrt_tensor_t;
typedef void nrt_tensor_set_t;

NRT_STATUS nrt_init(int framework, const char *fw_version, const char *fal_version);
void nrt_close(void);
NRT_STATUS nrt_load_collectives(const void *neff_bytes, size_t size, int32_t vnc, int32_t vnc_count,
                                uint32_t ctx_device_id, uint32_t ctx_device_count, nrt_model_t **model);
NRT_STATUS nrt_unload(nrt_model_t *model);
NRT_STATUS nrt_tensor_allocate(int placement, int vnc, size_t size, const char *name, nrt_tensor_t **tensor);
void nrt_tensor_free(nrt_tensor_t **tensor);
NRT_STATUS nrt_tensor_read(const nrt_tensor_t *tensor, void *buf, size_t offset, size_t size);
NRT_STATUS nrt_tensor_write(nrt_tensor_t *tensor, const void *buf, size_t offset, size_t size);
NRT_STATUS nrt_allocate_tensor_set(nrt_tensor_set_t **result);
void nrt_destroy_tensor_set(nrt_tensor_set_t **tensor_set);
NRT_STATUS nrt_add_tensor_to_tensor_set(nrt_tensor_set_t *tensor_set, const char *tensor_name, nrt_tensor_t *tensor);
NRT_STATUS nrt_execute(nrt_model_t *model, const nrt_tensor_set_t *input_set, nrt_tensor_set_t *output_set);

#define RANKS 4
#define STEPS 3

typedef struct {
    nrt_model_t *model;
    nrt_tensor_t *x, *y;
    nrt_tensor_set_t *ins, *outs;
    NRT_STATUS status;
} rank_t;

static void *execute(void *arg) {
    rank_t *r = arg;
    r->status = nrt_execute(r->model, r->ins, r->outs);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s MODEL.hlo\n", argv[0]);
        return 2;
    }
    FILE *f = fopen(argv[1], "rb");
    if (!f) { perror(argv[1]); return 1; }
    static char neff[1 << 16];
    size_t size = fread(neff, 1, sizeof neff, f);
    fclose(f);
    if (nrt_init(1, "", "") != 0) { fprintf(stderr, "nrt_init failed\n"); return 1; }
    nrt_model_t *bad = NULL;
    if (nrt_load_collectives(neff, size, 0, -1, 4, 4, &bad) == 0) {
        fprintf(stderr, "device id 4 of 4 was accepted\n");
        return 1;
    }
    rank_t ranks[RANKS];
    for (int k = 0; k < RANKS; k++) {
        rank_t *r = &ranks[k];
        if (nrt_load_collectives(neff, size, k, -1, k, RANKS, &r->model) != 0 ||
            nrt_tensor_allocate(0, k, 16, "x", &r->x) != 0 ||
            nrt_tensor_allocate(0, k, 16, "y", &r->y) != 0 ||
            nrt_allocate_tensor_set(&r->ins) != 0 || nrt_allocate_tensor_set(&r->outs) != 0 ||
            nrt_add_tensor_to_tensor_set(r->ins, "input0", r->x) != 0 ||
            nrt_add_tensor_to_tensor_set(r->outs, "output0", r->y) != 0) {
            fprintf(stderr, "rank %d: setup failed\n", k);
            return 1;
        }
    }
    for (int step = 0; step < STEPS; step++) {
        pthread_t threads[RANKS];
        for (int k = 0; k < RANKS; k++) {
            float x[4];
            for (int i = 0; i < 4; i++) x[i] = (float)(k + 10 * step + i);
            nrt_tensor_write(ranks[k].x, x, 0, sizeof x);
            pthread_create(&threads[k], NULL, execute, &ranks[k]);
        }
        for (int k = 0; k < RANKS; k++) pthread_join(threads[k], NULL);
        for (int k = 0; k < RANKS; k++) {
            float y[4];
            if (ranks[k].status != 0 || nrt_tensor_read(ranks[k].y, y, 0, sizeof y) != 0) {
                fprintf(stderr, "step %d rank %d: status %d\n", step, k, ranks[k].status);
                return 1;
            }
            /* sum over ranks of k + 10 step + i = 6 + 40 step + 4 i */
            for (int i = 0; i < 4; i++) {
                if (y[i] != (float)(6 + 40 * step + 4 * i)) {
                    fprintf(stderr, "step %d rank %d: y[%d] = %g\n", step, k, i, y[i]);
                    return 1;
                }
            }
        }
        printf("step %d: every rank has the sum\n", step);
    }
    for (int k = 0; k < RANKS; k++) {
        nrt_destroy_tensor_set(&ranks[k].ins);
        nrt_destroy_tensor_set(&ranks[k].outs);
        nrt_tensor_free(&ranks[k].x);
        nrt_tensor_free(&ranks[k].y);
        nrt_unload(ranks[k].model);
    }
    nrt_close();
    printf("ok\n");
    return 0;
}
