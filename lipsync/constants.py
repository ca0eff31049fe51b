"""Constants shared by the engine's modules, defined once."""

SAMPLE_RATE = 16000     # Hz: every analysis works on mono audio at this rate
# The one silence rule (lipsync.media.is_silent): audio is silent when it is shorter than
# MIN_AUDIO_SECONDS or its loudest 50 ms window is below SILENCE_DB (RMS, dBFS).
SILENCE_DB = -55.0
MIN_AUDIO_SECONDS = 0.1
