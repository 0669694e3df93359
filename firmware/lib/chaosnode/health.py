"""On-device SP 800-90B health tests (RCT, APT) with the host's cutoffs.

The cutoffs are computed here from the declared min-entropy per sample with the
same formulas as the host (chaosmagnet.health.cutoffs): RCT C = 1 + ceil(20/H)
for alpha = 2^-20; APT window 512 (1024 for 1-bit samples) and C = 1 +
CRITBINOM(W, 2^-H, 1 - alpha), found by summing the binomial upper tail from
the top.  The binomial terms are built from running sums of logs (no lgamma:
not every MicroPython port has it).

The test semantics match the host's C kernel: after a failure the failing test
starts over from the failing sample, so a stuck source keeps failing.
"""

import math

ALPHA_LOG2 = 20  # alpha = 2^-20


def rct_cutoff(h, alpha_log2=ALPHA_LOG2):
    """Repetition count test cutoff for h bits of min-entropy per sample."""
    if not h > 0:
        raise ValueError("h must be positive")
    return 1 + int(math.ceil(alpha_log2 / h))


def apt_window(bits):
    """APT window: 1024 for 1-bit samples, 512 otherwise."""
    return 1024 if bits == 1 else 512


def critbinom(n, p, alpha):
    """Smallest k with P[Binomial(n, p) > k] <= alpha (CRITBINOM(n, p, 1 - alpha))."""
    if p <= 0.0:
        return 0
    if p >= 1.0:
        return n
    log_p = math.log(p)
    log_q = math.log(1.0 - p)
    # log C(n, k) for k = 0..n by running sums, kept in a list (n + 1 floats).
    log_c = [0.0] * (n + 1)
    acc = 0.0
    for k in range(1, n + 1):
        acc += math.log(n - k + 1) - math.log(k)
        log_c[k] = acc
    tail = 0.0
    limit = alpha * (1 + 1e-12)
    k = n
    while k >= 0:
        if tail > limit:
            return k + 1
        tail += math.exp(log_c[k] + k * log_p + (n - k) * log_q)
        k -= 1
    return 0


def apt_cutoff(h, window=512, alpha_log2=ALPHA_LOG2):
    """Adaptive proportion test cutoff for h bits per sample and window W."""
    if not h > 0:
        raise ValueError("h must be positive")
    return 1 + critbinom(window, 2.0 ** (-h), 2.0 ** (-alpha_log2))


class Health:
    """Streaming RCT and APT over one source's samples, with failure counters."""

    def __init__(self, h, bits):
        self.h = h
        self.bits = bits
        self.rct_cutoff = rct_cutoff(h)
        self.apt_window = apt_window(bits)
        self.apt_cutoff = apt_cutoff(h, self.apt_window)
        self.samples = 0
        self.rct_failures = 0
        self.apt_failures = 0
        self._started = False
        self._rct_value = 0
        self._rct_run = 0
        self._apt_value = 0
        self._apt_count = 0
        self._apt_pos = 0

    def run(self, buf, n, width):
        """Test n samples from buf (width 1: bytes; width 2: 16-bit little-endian).

        Returns the number of failures found in these samples.
        """
        if n <= 0:
            return 0
        rct_value = self._rct_value
        rct_run = self._rct_run
        apt_value = self._apt_value
        apt_count = self._apt_count
        apt_pos = self._apt_pos
        rct_c = self.rct_cutoff
        apt_c = self.apt_cutoff
        apt_w = self.apt_window
        rct_fail = 0
        apt_fail = 0
        i = 0
        if not self._started:
            x = buf[0] if width == 1 else buf[0] | (buf[1] << 8)
            rct_value = x
            rct_run = 1
            apt_value = x
            apt_count = 1
            apt_pos = 1
            self._started = True
            i = 1
        while i < n:
            if width == 1:
                x = buf[i]
            else:
                x = buf[2 * i] | (buf[2 * i + 1] << 8)
            i += 1
            if x == rct_value:
                rct_run += 1
                if rct_run >= rct_c:
                    rct_fail += 1
                    rct_run = 1
            else:
                rct_value = x
                rct_run = 1
            if apt_pos == apt_w:
                apt_value = x
                apt_count = 1
                apt_pos = 1
            else:
                apt_pos += 1
                if x == apt_value:
                    apt_count += 1
                    if apt_count >= apt_c:
                        apt_fail += 1
                        apt_pos = apt_w
        self._rct_value = rct_value
        self._rct_run = rct_run
        self._apt_value = apt_value
        self._apt_count = apt_count
        self._apt_pos = apt_pos
        self.samples += n
        self.rct_failures += rct_fail
        self.apt_failures += apt_fail
        return rct_fail + apt_fail
