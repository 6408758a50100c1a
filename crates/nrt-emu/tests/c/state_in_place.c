/* Drives libnrt_emu.so through libnrt's C ABI the way the runtime developer guide's sample
 * does (init, load, tensor info, allocate, tensor sets, write, execute, read, free, close),
 * with a state tensor bound in place: the same nrt_tensor_t in the input set and the
 * output set. The declarations below are libnrt's (nrt.h, nrt_experimental.h), written out
 * because the headers are not installed here; the layout checks pin them to the ABI.
 *
 * usage: state_in_place MODEL.hlo   (the mlp_cache fixture: y = cache * relu(x @ w + b),
 *                                   output 1 = cache + 1 aliased to parameter 3) */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef int NRT_STATUS;
typedef struct nrt_model nrt_model_t;
typedef struct nrt_tensor nrt_tensor_t;
typedef void nrt_tensor_set_t;
typedef enum { NRT_TENSOR_PLACEMENT_DEVICE, NRT_TENSOR_PLACEMENT_HOST, NRT_TENSOR_PLACEMENT_VIRTUAL } nrt_tensor_placement_t;
typedef enum { NRT_FRAMEWORK_TYPE_INVALID = 0, NRT_FRAMEWORK_TYPE_NO_FW = 1 } nrt_framework_type_t;
typedef enum { NRT_TENSOR_USAGE_INPUT = 0, NRT_TENSOR_USAGE_OUTPUT } nrt_tensor_usage_t;
typedef int nrt_dtype_t;
#define NRT_TENSOR_NAME_MAX 256
typedef struct nrt_tensor_info {
    char name[NRT_TENSOR_NAME_MAX];
    nrt_tensor_usage_t usage;
    size_t size;
    nrt_dtype_t dtype;
    uint32_t *shape;
    uint32_t ndim;
} nrt_tensor_info_t;
typedef struct nrt_tensor_info_array {
    uint64_t tensor_count;
    nrt_tensor_info_t tensor_array[];
} nrt_tensor_info_array_t;

NRT_STATUS nrt_init(nrt_framework_type_t framework, const char *fw_version, const char *fal_version);
void nrt_close(void);
NRT_STATUS nrt_load(const void *neff_bytes, size_t size, int32_t vnc, int32_t vnc_count, nrt_model_t **model);
NRT_STATUS nrt_unload(nrt_model_t *model);
NRT_STATUS nrt_get_model_tensor_info(nrt_model_t *model, nrt_tensor_info_array_t **tensor_info);
NRT_STATUS nrt_free_model_tensor_info(nrt_tensor_info_array_t *tensor_info);
NRT_STATUS nrt_tensor_allocate(nrt_tensor_placement_t placement, int vnc, size_t size, const char *name, nrt_tensor_t **tensor);
void nrt_tensor_free(nrt_tensor_t **tensor);
NRT_STATUS nrt_tensor_read(const nrt_tensor_t *tensor, void *buf, size_t offset, size_t size);
NRT_STATUS nrt_tensor_write(nrt_tensor_t *tensor, const void *buf, size_t offset, size_t size);
NRT_STATUS nrt_tensor_memset(nrt_tensor_t *tensor, uint64_t offset, int value, size_t size);
NRT_STATUS nrt_allocate_tensor_set(nrt_tensor_set_t **result);
void nrt_destroy_tensor_set(nrt_tensor_set_t **tensor_set);
NRT_STATUS nrt_add_tensor_to_tensor_set(nrt_tensor_set_t *tensor_set, const char *tensor_name, nrt_tensor_t *tensor);
NRT_STATUS nrt_get_tensor_from_tensor_set(nrt_tensor_set_t *tensor_set, const char *tensor_name, nrt_tensor_t **tensor);
NRT_STATUS nrt_execute(nrt_model_t *model, const nrt_tensor_set_t *input_set, nrt_tensor_set_t *output_set);
const char *nrt_get_status_as_str(NRT_STATUS status);

#define CHECK(call)                                                                 \
    do {                                                                            \
        NRT_STATUS s_ = (call);                                                     \
        if (s_ != 0) {                                                              \
            fprintf(stderr, "%s failed: %d (%s)\n", #call, s_, nrt_get_status_as_str(s_)); \
            return 1;                                                               \
        }                                                                           \
    } while (0)
#define EXPECT(cond)                                           \
    do {                                                       \
        if (!(cond)) {                                         \
            fprintf(stderr, "expectation failed: %s\n", #cond); \
            return 1;                                          \
        }                                                      \
    } while (0)

int main(int argc, char **argv) {
    EXPECT(argc == 2);
    /* the ABI the driver relies on */
    EXPECT(offsetof(nrt_tensor_info_t, usage) == 256);
    EXPECT(offsetof(nrt_tensor_info_t, size) == 264);
    EXPECT(offsetof(nrt_tensor_info_t, dtype) == 272);
    EXPECT(offsetof(nrt_tensor_info_t, shape) == 280);
    EXPECT(offsetof(nrt_tensor_info_t, ndim) == 288);
    EXPECT(sizeof(nrt_tensor_info_t) == 296);
    EXPECT(offsetof(nrt_tensor_info_array_t, tensor_array) == 8);

    EXPECT(nrt_load("x", 1, -1, -1, NULL) == 13); /* NRT_UNINITIALIZED before nrt_init */
    CHECK(nrt_init(NRT_FRAMEWORK_TYPE_NO_FW, "", ""));

    FILE *f = fopen(argv[1], "rb");
    EXPECT(f != NULL);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *neff = malloc(n);
    EXPECT(fread(neff, 1, n, f) == (size_t)n);
    fclose(f);

    nrt_model_t *model = NULL;
    EXPECT(nrt_load("garbage", 7, -1, -1, &model) == 2); /* NRT_INVALID */
    CHECK(nrt_load(neff, n, -1, -1, &model));
    free(neff);

    nrt_tensor_info_array_t *info = NULL;
    CHECK(nrt_get_model_tensor_info(model, &info));
    EXPECT(info->tensor_count == 6);

    nrt_tensor_set_t *inputs = NULL, *outputs = NULL;
    CHECK(nrt_allocate_tensor_set(&inputs));
    CHECK(nrt_allocate_tensor_set(&outputs));
    nrt_tensor_t *tensors[6] = {0};
    nrt_tensor_t *cache = NULL;
    for (uint64_t i = 0; i < info->tensor_count; i++) {
        nrt_tensor_info_t *t = &info->tensor_array[i];
        if (strcmp(t->name, "output1") == 0) {
            /* the state: bind the same device tensor as input3 */
            CHECK(nrt_add_tensor_to_tensor_set(outputs, t->name, cache));
            continue;
        }
        CHECK(nrt_tensor_allocate(NRT_TENSOR_PLACEMENT_DEVICE, 0, t->size, t->name, &tensors[i]));
        if (strcmp(t->name, "input3") == 0) {
            cache = tensors[i];
            EXPECT(t->size == 12 && t->ndim == 1 && t->shape[0] == 3);
            CHECK(nrt_tensor_memset(cache, 0, 0, t->size));
        }
        CHECK(nrt_add_tensor_to_tensor_set(t->usage == NRT_TENSOR_USAGE_INPUT ? inputs : outputs, t->name, tensors[i]));
    }
    EXPECT(cache != NULL);

    float x[4] = {1.0f, 2.0f, 0.5f, 1.0f}, w[12], b[3] = {0, 0, 0}, y[3], c[3];
    for (int i = 0; i < 12; i++) w[i] = 0.5f;
    nrt_tensor_t *t = NULL;
    CHECK(nrt_get_tensor_from_tensor_set(inputs, "input0", &t));
    CHECK(nrt_tensor_write(t, x, 0, sizeof x));
    CHECK(nrt_get_tensor_from_tensor_set(inputs, "input1", &t));
    CHECK(nrt_tensor_write(t, w, 0, sizeof w));
    CHECK(nrt_get_tensor_from_tensor_set(inputs, "input2", &t));
    CHECK(nrt_tensor_write(t, b, 0, sizeof b));
    EXPECT(nrt_tensor_write(t, b, 4, sizeof b) == 2); /* past the end: NRT_INVALID */
    EXPECT(nrt_get_tensor_from_tensor_set(inputs, "nope", &t) == 1); /* NRT_FAILURE */

    nrt_tensor_t *out0 = NULL;
    CHECK(nrt_get_tensor_from_tensor_set(outputs, "output0", &out0));
    for (int step = 1; step <= 2; step++) {
        CHECK(nrt_execute(model, inputs, outputs));
        CHECK(nrt_tensor_read(out0, y, 0, sizeof y));
        CHECK(nrt_tensor_read(cache, c, 0, sizeof c));
        printf("step %d: y = %g %g %g, cache = %g %g %g\n", step, y[0], y[1], y[2], c[0], c[1], c[2]);
        float want_y = step == 1 ? 0.0f : 2.25f;
        for (int i = 0; i < 3; i++) {
            EXPECT(y[i] == want_y);
            EXPECT(c[i] == (float)step);
        }
    }

    nrt_destroy_tensor_set(&inputs);
    nrt_destroy_tensor_set(&outputs);
    EXPECT(inputs == NULL && outputs == NULL);
    for (int i = 0; i < 6; i++)
        if (tensors[i]) nrt_tensor_free(&tensors[i]);
    CHECK(nrt_free_model_tensor_info(info));
    CHECK(nrt_unload(model));
    nrt_close();
    EXPECT(nrt_allocate_tensor_set(&inputs) == 14); /* NRT_CLOSED after nrt_close */
    printf("ok\n");
    return 0;
}
