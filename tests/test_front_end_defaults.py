"""One set of defaults: what the CLI's flags, the Space's form and the ComfyUI nodes' inputs show before a user
changes anything is :class:`~sserd_core.pipeline.EditOptions`' own (the ComfyUI side, which needs a server, is
``test_comfyui_server.py::test_the_three_front_ends_default_to_edit_options``)."""

from __future__ import annotations

from sserd_core.pipeline import EditOptions

#: the options every front-end shows, compared by name
COMPARED = ("emotion shown", "intensity", "intensity range", "sync", "face_index", "start", "end", "backend",
            "dtype", "batch_size", "noise_mode", "max_face_size", "controls")


def as_options(dtype, batch_size, noise_mode, max_face_size) -> dict:
    """The neural backend's settings as a front-end shows them ("auto", 0 or empty for automatic), read as
    EditOptions reads them (each front-end hands its controls' values to EditOptions as they are)."""
    return EditOptions(dtype=dtype, batch_size=batch_size, noise_mode=noise_mode,
                       max_face_size=max_face_size).neural_options()


def controls_shown(values, keyframes: str = ""):
    """A form's expression controls as EditOptions' field: None when every slider is at 0 and no keyframes are typed
    (the form asks for no control), else the text."""
    import numpy as np

    from sserd_core.controls import format_controls

    if keyframes:
        return keyframes
    return format_controls([(0.0, np.asarray(values, np.float32))]) if any(values) else None


def cli_defaults() -> dict:
    """``sserd edit``'s defaults as EditOptions values (no --emotion: the label the user must type)."""
    from sserd_core.cli import build_parser

    args = build_parser().parse_args(["edit", "in.mp4", "-o", "out.mp4"])
    edit = next(a for a in build_parser()._subparsers._group_actions[0].choices["edit"]._actions
                if a.dest == "intensity")
    lo, hi = (float(x) for x in edit.help.split(", ")[1].split(" ")[0].split(".."))
    return {"emotion shown": args.emotion, "intensity": EditOptions.intensity if args.intensity is None else args.intensity,
            "intensity range": (lo, hi), "sync": args.sync, "face_index": args.face_index, "start": args.start,
            "end": args.end, "backend": args.model or EditOptions.backend, "controls": args.control,
            **as_options(args.dtype, args.batch_size, args.noise_mode, args.max_face_size),
            "threads": args.threads, "preview_n": args.preview, "device": args.device, "strict": args.strict}


def space_defaults() -> dict:
    """The Space form's initial values (the page as built, not the source text)."""
    import app
    from sserd_core.controls import CONTROLS

    demo = app.build_demo()
    by_label = {getattr(b, "label", None): b for b in demo.blocks.values()}
    slider = by_label["Intensity"]
    controls = [by_label[c.label].value for c in CONTROLS]  # the controls section's sliders
    return {"emotion shown": by_label["Emotion"].value, "intensity": slider.value,
            "intensity range": (slider.minimum, slider.maximum), "sync": EditOptions.sync,  # the Space has no sync
            "face_index": by_label["Face index"].value, "start": by_label["Start (s)"].value,
            "end": by_label["End (s)"].value, "backend": by_label["Backend"].value,
            "controls": controls_shown(controls),
            **as_options(by_label["Precision"].value, by_label["Batch size"].value, by_label["Decoder noise"].value,
                         by_label["Max face size (px)"].value)}


def core_defaults(shown_label: bool) -> dict:
    d = EditOptions()
    return {"emotion shown": EditOptions.FORM_LABEL if shown_label else d.emotion, "intensity": d.intensity,
            "intensity range": EditOptions.LIMITS["intensity"], "sync": d.sync, "face_index": d.face_index,
            "start": d.start, "end": d.end, "backend": d.backend, "dtype": d.dtype, "batch_size": d.batch_size,
            "noise_mode": d.noise_mode, "max_face_size": d.max_face_size, "controls": d.controls}


def test_the_cli_flags_default_to_edit_options():
    cli = cli_defaults()
    assert {k: cli[k] for k in COMPARED} == core_defaults(shown_label=False)
    d = EditOptions()
    assert (cli["threads"], cli["preview_n"], cli["device"], cli["strict"]) == (d.threads, d.preview_n, d.device,
                                                                                 d.strict)


def test_the_space_form_defaults_to_edit_options():
    assert space_defaults() == core_defaults(shown_label=True)


def test_the_space_with_no_label_asks_for_what_the_core_does():
    """An API call with no label is EditOptions' own default (the neutral face), not a label the form restates."""
    import app

    assert app._target_emotion("label", None, None, None, "") == {"emotion": None, "intensity": EditOptions.intensity}


def test_sync_modes_are_one_list():
    """The driving clip's sync modes: the landmark path (EmotionSpec), the neural one (DrivingClip), the CLI and
    EditOptions take the same list, with the same default."""
    import numpy as np

    from sserd_core.cli import build_parser
    from sserd_core.emotion import SYNC_MODES, EmotionSpec

    sync = next(a for a in build_parser()._subparsers._group_actions[0].choices["edit"]._actions if a.dest == "sync")
    assert tuple(sync.choices) == SYNC_MODES and sync.default == EditOptions.sync == SYNC_MODES[0]
    vectors = np.eye(7, dtype=np.float32)[[1, 2, 3, 4]]  # a 4-frame driving clip
    for mode in SYNC_MODES:
        EditOptions(reference="clip.mp4", sync=mode)  # accepted by the options
        spec = EmotionSpec.from_driving_clip("clip.mp4", np.arange(4) * 0.1, vectors, 0.4, sync=mode)
        assert spec.targets(np.arange(10) / 25.0).shape == (10, 7)
    stretch = EmotionSpec.from_driving_clip("clip.mp4", np.arange(4) * 0.1, vectors, 0.4, sync="stretch")
    picked = stretch.targets(np.arange(10) / 25.0).argmax(1)
    assert picked.tolist() == [1 + int(i * 4 / 10) for i in range(10)]  # the whole clip over the whole source


def test_the_neural_controls_show_the_defaults_as_they_are():
    """What each front-end shows before a change: the CLI's flags hold EditOptions' values themselves; the Space's
    form and the nodes' widgets, which cannot be empty or hold None, show "auto" for the precision (the Space's number
    fields are empty), the others as they are."""
    from sserd_core.cli import build_parser

    import app

    args = build_parser().parse_args(["edit", "in.mp4", "-o", "out.mp4"])
    d = EditOptions()
    assert (args.dtype, args.batch_size, args.noise_mode, args.max_face_size) == \
        (d.dtype, d.batch_size, d.noise_mode, d.max_face_size) == (None, None, "zero", None)
    by_label = {getattr(b, "label", None): b for b in app.build_demo().blocks.values()}
    assert [by_label[k].value for k in ("Precision", "Batch size", "Decoder noise", "Max face size (px)")] == \
        ["auto", None, "zero", None]
    from sserd_core.validate import DTYPES, NOISE_MODES

    assert [v for _, v in by_label["Precision"].choices] == list(DTYPES)  # one list everywhere
    assert [v for _, v in by_label["Decoder noise"].choices] == list(NOISE_MODES)
    edit = build_parser()._subparsers._group_actions[0].choices["edit"]
    choices = {a.dest: tuple(a.choices) for a in edit._actions if a.dest in ("dtype", "noise_mode")}
    assert choices == {"dtype": DTYPES, "noise_mode": NOISE_MODES}
