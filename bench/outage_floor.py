#!/usr/bin/env python3
"""How small the largest offset in a 30-minute outage can be in tests/sim, for any engine.

    python3 bench/outage_floor.py

The simulated oscillator's frequency is a random walk of 1e-9 per sqrt(s) (tests/sim/scenarios.cc,
one step per second). During an outage the clock free-runs on the frequency it learned, so its
offset grows by the integrated random walk plus the learned frequency's error times the time. This
draws that in Monte Carlo (fixed seed) for a state at the outage start known perfectly, and known as
well as a Kalman filter in steady state can know it (its Riccati equation, for a sample every P
seconds with noise sigma_m each), and prints the medians over groups of 20 outages (the bench
reports the median and the worst of 20 seeds). The phase and frequency errors at the start are drawn
independently (their correlation in the filter is ignored). Stdlib only; ~15 s.
"""
import math
import random
import statistics

WANDER = 1e-9  # per sqrt(s)
OUTAGE = 1800  # s


def steady_state(poll, sigma_m, q=WANDER**2):
    """Posterior sigma of phase (s) and frequency of the filter in steady state."""
    pxx, pxf, pff = 1e-6, 0.0, 1e-10
    for _ in range(5000):
        pxx += 2 * poll * pxf + poll * poll * pff + q * poll**3 / 3
        pxf += poll * pff + q * poll * poll / 2
        pff += q * poll
        s = pxx + sigma_m**2
        kx, kf = pxx / s, pxf / s
        pxx, pxf, pff = (1 - kx) * pxx, (1 - kx) * pxf, pff - kf * pxf
    return math.sqrt(pxx), math.sqrt(pff)


def outages(sigma_x, sigma_f, n=2000, seed=2):
    rng = random.Random(seed)
    worst = []
    for _ in range(n):
        f = rng.gauss(0, sigma_f)
        x = rng.gauss(0, sigma_x)
        m = abs(x)
        for _ in range(OUTAGE):
            f += rng.gauss(0, WANDER)
            x += f
            m = max(m, abs(x))
        worst.append(m * 1e6)
    groups = [worst[i:i + 20] for i in range(0, n, 20)]
    return (statistics.median(statistics.median(g) for g in groups),
            statistics.median(max(g) for g in groups))


def main():
    print("state at outage start                       median of 20 / worst of 20 (us)")
    med, wst = outages(0, 0)
    print(f"known perfectly                             {med:6.1f} / {wst:6.1f}")
    for poll, sigma_m in ((1024, 40e-6), (64, 40e-6), (64, 20e-6), (16, 20e-6)):
        sx, sf = steady_state(poll, sigma_m)
        med, wst = outages(sx, sf)
        print(f"filter, poll {poll:4d} s, noise {sigma_m * 1e6:2.0f} us: "
              f"sigma_x {sx * 1e6:4.1f} us, sigma_f {sf * 1e9:4.1f} ppb  {med:6.1f} / {wst:6.1f}")


if __name__ == "__main__":
    main()
