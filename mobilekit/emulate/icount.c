/* mobilekit's instruction counter: a qemu TCG plugin (plugin API v1, qemu 7.2 in Debian bookworm).
 *
 * Counts the guest instructions each vCPU (guest thread) executes. The guest marks a
 * measured window with a syscall number nothing uses (MARKER): a1 = 1 opens it, a1 = 0
 * closes it and appends "total caller active" to the output file: instructions of all
 * threads in the window, of the thread that marked it, and how many threads ran.
 * Each thread adds only to its own counter, so a 1-thread window is exact and repeatable.
 *
 * Debian ships no qemu-plugin.h: the few prototypes used are declared here.
 * Build: gcc -shared -fPIC -O2 -o libicount.so icount.c
 * Use:   qemu-aarch64 -plugin ./libicount.so,out=counts.txt ... */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef uint64_t qemu_plugin_id_t;
struct qemu_plugin_tb;
typedef struct qemu_info_t qemu_info_t;
enum qemu_plugin_cb_flags { QEMU_PLUGIN_CB_NO_REGS, QEMU_PLUGIN_CB_R_REGS, QEMU_PLUGIN_CB_RW_REGS };
typedef void (*tb_trans_cb)(qemu_plugin_id_t, struct qemu_plugin_tb *);
typedef void (*udata_cb)(unsigned int, void *);
typedef void (*syscall_cb)(qemu_plugin_id_t, unsigned int, int64_t, uint64_t, uint64_t, uint64_t, uint64_t,
                           uint64_t, uint64_t, uint64_t, uint64_t);
void qemu_plugin_register_vcpu_tb_trans_cb(qemu_plugin_id_t, tb_trans_cb);
void qemu_plugin_register_vcpu_tb_exec_cb(struct qemu_plugin_tb *, udata_cb, enum qemu_plugin_cb_flags, void *);
size_t qemu_plugin_tb_n_insns(const struct qemu_plugin_tb *);
void qemu_plugin_register_vcpu_syscall_cb(qemu_plugin_id_t, syscall_cb);

__attribute__((visibility("default"))) int qemu_plugin_version = 1;

#define MAX_VCPUS 1024
#define MARKER 0x4d4b /* an aarch64 syscall number nothing uses: the guest marks its window with it */
static uint64_t counts[MAX_VCPUS];
static uint64_t start[MAX_VCPUS];
static FILE *out;

static void on_exec(unsigned int vcpu, void *n) { counts[vcpu % MAX_VCPUS] += (uintptr_t)n; }

static void on_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb) {
    qemu_plugin_register_vcpu_tb_exec_cb(tb, on_exec, QEMU_PLUGIN_CB_NO_REGS,
                                         (void *)(uintptr_t)qemu_plugin_tb_n_insns(tb));
}

static void on_syscall(qemu_plugin_id_t id, unsigned int vcpu, int64_t num, uint64_t a1, uint64_t a2,
                       uint64_t a3, uint64_t a4, uint64_t a5, uint64_t a6, uint64_t a7, uint64_t a8) {
    if (num != MARKER) return;
    if (a1 == 1) { memcpy(start, counts, sizeof counts); return; }
    uint64_t total = 0, caller = counts[vcpu % MAX_VCPUS] - start[vcpu % MAX_VCPUS];
    int active = 0;
    for (int i = 0; i < MAX_VCPUS; i++) {
        uint64_t d = counts[i] - start[i];
        total += d;
        active += d != 0;
    }
    fprintf(out, "%llu %llu %d\n", (unsigned long long)total, (unsigned long long)caller, active);
    fflush(out);
}

__attribute__((visibility("default")))
int qemu_plugin_install(qemu_plugin_id_t id, const qemu_info_t *info, int argc, char **argv) {
    out = stderr;
    for (int i = 0; i < argc; i++)
        if (strncmp(argv[i], "out=", 4) == 0 && !(out = fopen(argv[i] + 4, "w"))) return -1;
    qemu_plugin_register_vcpu_tb_trans_cb(id, on_trans);
    qemu_plugin_register_vcpu_syscall_cb(id, on_syscall);
    return 0;
}
