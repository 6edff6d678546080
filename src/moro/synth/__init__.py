"""The synthetic occlusion world: procedural motion on Anny (``moro.synth.motion``), cameras,
rendering, occluders and visibility labels (``moro.synth.render``), per-frame labels
(``labels``), split plans (``splits``), one sequence on disk (``sequence``) and a whole split with
workers and resume (``writer``, behind ``moro synth``). The on-disk format and its reader live in
:mod:`moro.data.synth`."""
