"""Constants shared by the engine's modules, defined once."""

SAMPLE_RATE = 16000     # Hz: every analysis works on mono audio at this rate
SILENCE_PEAK = 5e-4     # peak amplitude (about -66 dBFS) below which audio has no speech
