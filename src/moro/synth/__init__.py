"""The synthetic occlusion world: procedural motion on Anny (``moro.synth.motion``), cameras,
rendering, occluders and visibility labels (``moro.synth.render``)."""
