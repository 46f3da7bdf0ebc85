"""Write the pack's example workflows (UI format) to workflows/.

ComfyUI lists every ``workflows/*.json`` of a custom node pack as that pack's templates.
The graphs are described here once, compactly, and written in the UI format the
frontend saves (nodes with sockets, widget values, links, a note node each).
tests/test_comfyui_server.py loads each file in a real ComfyUI page and checks that
the page knows every node and serialises the same prompt as tests/comfyui_helpers.ui_to_api.

    python scripts/build_workflows.py
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "workflows"

# socket outputs of each node type used here (name, type), in order
OUTPUTS = {
    "SSERD_LoadVideo": [("video", "VIDEO"), ("audio", "AUDIO"), ("fps", "FLOAT"), ("frame_count", "INT"),
                        ("images", "IMAGE")],
    "SSERD_DisentangleContent": [("content", "SSERD_CONTENT")],
    "SSERD_ExtractEmotion": [("emotion", "SSERD_EMOTION")],
    "SSERD_ExpressionControls": [("emotion", "SSERD_EMOTION"), ("preview", "IMAGE"), ("note", "STRING")],
    "SSERD_RenderFace": [("video", "VIDEO"), ("side_by_side", "VIDEO"), ("images", "IMAGE")],
    "SSERD_MuxAudio": [("video", "VIDEO")],
    "SSERD_LoadModel": [("model", "SSERD_MODEL")],
    "SSERD_AddFace": [("faces", "SSERD_FACES")],
    "LoadImage": [("IMAGE", "IMAGE"), ("MASK", "MASK")],
    "SaveVideo": [],
    "Note": [],
}
# link inputs (name, type) in order
INPUTS = {
    "SSERD_DisentangleContent": [("video", "VIDEO")],
    "SSERD_ExtractEmotion": [("reference_image", "IMAGE"), ("reference_video", "VIDEO")],
    "SSERD_ExpressionControls": [("emotion", "SSERD_EMOTION"), ("content", "SSERD_CONTENT")],
    "SSERD_RenderFace": [("content", "SSERD_CONTENT"), ("emotion", "SSERD_EMOTION"), ("model", "SSERD_MODEL"),
                         ("other_faces", "SSERD_FACES")],
    "SSERD_AddFace": [("content", "SSERD_CONTENT"), ("emotion", "SSERD_EMOTION"), ("other_faces", "SSERD_FACES")],
    "SSERD_MuxAudio": [("video", "VIDEO"), ("audio", "AUDIO")],
    "SaveVideo": [("video", "VIDEO")],
}
OPTIONAL = {("SSERD_ExtractEmotion", "reference_image"), ("SSERD_ExtractEmotion", "reference_video"),
            ("SSERD_RenderFace", "model"), ("SSERD_RenderFace", "other_faces"), ("SSERD_AddFace", "other_faces"),
            ("SSERD_MuxAudio", "audio"), ("SSERD_ExpressionControls", "emotion"), ("SSERD_ExpressionControls", "content")}
TITLES = {"Note": "About this workflow"}
SIZES = {"SSERD_LoadVideo": [300, 300], "SSERD_DisentangleContent": [270, 150], "SSERD_ExtractEmotion": [300, 330],
         "SSERD_RenderFace": [320, 380], "SSERD_MuxAudio": [240, 90], "SSERD_LoadModel": [300, 320],
         "LoadImage": [280, 330], "SaveVideo": [330, 380], "Note": [340, 300], "SSERD_AddFace": [270, 100],
         "SSERD_ExpressionControls": [300, 560]}

# Layout (canvas units; a node's title bar is the 30 units above its position). The frontend grows
# nodes once media load: Load Video's player makes it ~550 tall (square clip at width 300), Save
# Video ~460 with its player, Render Face ~500 after a run, Disentangle Content and Extract Emotion
# a little with their bars. Nodes are placed so none overlaps another after that, with a gap:
# tests/test_comfyui_server.py checks it in a real page before and after a run.
ROW2_Y = 620  # the note, under Load Video
SIDE_ROW_Y = 520  # the cross-identity workflow's second Mux Audio → Save Video (side by side)
# where the view opens: the top row's title bars and the pack badges above them clear the
# frontend's toolbar (the canvas starts right under it)
# and the whole graph, Save Video's right edge included, fits a 1600 px wide window
VIEW = {"scale": 0.74, "offset": [40, 90]}


class Graph:
    def __init__(self):
        self.nodes, self.links = [], []

    def node(self, kind: str, pos, widgets=None, title=None) -> dict:
        n = {"id": len(self.nodes) + 1, "type": kind, "pos": list(pos), "size": SIZES.get(kind, [300, 200]),
             "flags": {}, "order": len(self.nodes), "mode": 0,
             "inputs": [{"name": name, "type": t, "link": None, **({"shape": 7} if (kind, name) in OPTIONAL else {})}
                        for name, t in INPUTS.get(kind, [])],
             "outputs": [{"name": name, "type": t, "links": []} for name, t in OUTPUTS[kind]],
             "properties": {} if kind == "Note" else {"Node name for S&R": kind},
             "widgets_values": list(widgets or [])}
        if title or kind in TITLES:
            n["title"] = title or TITLES[kind]
        if kind == "Note":
            n["color"], n["bgcolor"] = "#432", "#653"
        self.nodes.append(n)
        return n

    def link(self, src: dict, out_name: str, dst: dict, in_name: str) -> None:
        slot = [o["name"] for o in src["outputs"]].index(out_name)
        dslot = [i["name"] for i in dst["inputs"]].index(in_name)
        lid = len(self.links) + 1
        t = src["outputs"][slot]["type"]
        self.links.append([lid, src["id"], slot, dst["id"], dslot, t])
        src["outputs"][slot]["links"].append(lid)
        dst["inputs"][dslot]["link"] = lid

    def to_json(self) -> dict:
        return {"last_node_id": len(self.nodes), "last_link_id": len(self.links), "nodes": self.nodes,
                "links": self.links, "groups": [], "config": {},
                "extra": {"ds": {"scale": VIEW["scale"], "offset": list(VIEW["offset"])}}, "version": 0.4}


def save_video(g: Graph, pos, prefix: str) -> dict:
    return g.node("SaveVideo", pos, [prefix, "auto", "auto"])


def edit_chain(g: Graph, load: dict, emotion: dict, y: float = 0, model: dict | None = None, prefix="sserd/edit",
               side_by_side_prefix: str | None = None, content: dict | None = None) -> None:
    if content is None:
        content = g.node("SSERD_DisentangleContent", (380, y), [0])
        g.link(load, "video", content, "video")
    render = g.node("SSERD_RenderFace", (1040, y), [8])
    mux = g.node("SSERD_MuxAudio", (1400, y))
    save = save_video(g, (1680, y), prefix)
    g.link(content, "content", render, "content")
    g.link(emotion, "emotion", render, "emotion")
    if model is not None:
        g.link(model, "model", render, "model")
    g.link(render, "video", mux, "video")
    g.link(load, "audio", mux, "audio")
    g.link(mux, "video", save, "video")
    if side_by_side_prefix:
        mux2 = g.node("SSERD_MuxAudio", (1400, y + SIDE_ROW_Y))
        save2 = save_video(g, (1680, y + SIDE_ROW_Y), side_by_side_prefix)
        g.link(render, "side_by_side", mux2, "video")
        g.link(load, "audio", mux2, "audio")
        g.link(mux2, "video", save2, "video")


def label_edit() -> dict:
    g = Graph()
    g.node("Note", (20, ROW2_Y), ["Label edit with intensity.\n\n"
           "1. Put a talking-face video in ComfyUI/input (the pack ships assets/sample.mp4) and pick it in "
           "Load Video (SSERD); start/end/frame cap trim it.\n"
           "2. Extract Emotion: click an emotion and drag the intensity (0 = neutral, 1 = full).\n"
           "3. Queue. Disentangle Content tracks the face and keeps the speech (jaw and lip opening); Render "
           "Face changes brows, lids, cheeks and lip corners; Mux Audio puts the original sound back; Save "
           "Video writes output/sserd/label_edit_*.mp4.\n\n"
           "Render Face shows source | edited frames and the emotion measured on the result."])
    load = g.node("SSERD_LoadVideo", (20, 0), ["sample.mp4", 0.0, 0.0, 0, 0.0, "image"])
    emotion = g.node("SSERD_ExtractEmotion", (700, 0), ["sad", 0.8, ""])
    edit_chain(g, load, emotion, prefix="sserd/label_edit")
    return g.to_json()


def cross_identity() -> dict:
    g = Graph()
    g.node("Note", (20, ROW2_Y), ["Cross-identity transfer from a reference image.\n\n"
           "The emotion shown by ANY person's face in the reference image (core Load Image; the pack ships "
           "assets/astronaut_face.png, a smiling astronaut) is measured and retargeted onto the speaker's own face "
           "geometry (here Grace Hopper, assets/sample_hopper.mp4): the speaker keeps their identity and their "
           "lip movements.\n\n"
           "Extract Emotion shows the measured emotion as bars. Load Model (SSERD) picks the backend (the "
           "built-in landmark editor here; neural SSERD checkpoints go in models/sserd/).\n"
           "Two files are saved: the edit, and source | edited side by side, both with the original audio."])
    load = g.node("SSERD_LoadVideo", (20, 0), ["sample_hopper.mp4", 0.0, 0.0, 0, 0.0, "image"])
    ref = g.node("LoadImage", (380, 330), ["astronaut_face.png", "image"])
    emotion = g.node("SSERD_ExtractEmotion", (700, 0), ["neutral", 1.0, ""])
    model = g.node("SSERD_LoadModel", (700, 420), ["landmark (built-in)", "", "auto", 8, "bicubic", "auto", 0, "zero", 0])
    g.link(ref, "IMAGE", emotion, "reference_image")
    edit_chain(g, load, emotion, model=model, prefix="sserd/cross_identity",
               side_by_side_prefix="sserd/cross_identity_side_by_side")
    return g.to_json()


def emotion_curve() -> dict:
    g = Graph()
    g.node("Note", (20, ROW2_Y), ["An emotion curve over time.\n\n"
           "Extract Emotion's curve field takes keyframes TIME:EMOTION[@INTENSITY], TIME in seconds from the "
           "start of the clip; the emotion moves linearly between keyframes and holds after the last one. "
           "This one goes neutral → happy → surprised → sad while the person keeps talking.\n\n"
           "Clear the curve to go back to the label and intensity."])
    load = g.node("SSERD_LoadVideo", (20, 0), ["sample.mp4", 0.0, 0.0, 0, 0.0, "image"])
    emotion = g.node("SSERD_ExtractEmotion", (700, 0),
                     ["happy", 1.0, "0:neutral, 2:happy@0.9, 4.5:surprised@0.8, 7:sad@0.7"])
    edit_chain(g, load, emotion, prefix="sserd/emotion_curve")
    return g.to_json()


#: the sliders of the Expression Controls workflow, by name (the others at 0): a frown of the brows and the lip
#: corners on the smiling astronaut, the inner brows raised (worried)
CONTROL_VALUES = {"brow_inner": 0.5, "smile": -0.8}


def expression_controls() -> dict:
    from sserd_core.controls import CONTROL_NAMES

    g = Graph()
    g.node("Note", (20, ROW2_Y), ["Expression controls: move each part of the face yourself.\n\n"
           "Expression Controls has 13 sliders over the facial action units (brows, lids, cheeks, nose, lip "
           "corners, lips, chin), each -1..+1 with 0 = the source; none moves the jaw or the lip opening, so the "
           "speech stays the source's. Here: smile -0.8 (lip corners drawn in and down), brow_inner +0.5.\n\n"
           "Its content input takes Disentangle Content's track: the node shows one frame, source | edited, at "
           "preview_time (-1 = the middle), in about a second, and says which controls saturate. Queue to render "
           "the whole clip.\n\n"
           "Connect Extract Emotion to its emotion input to add the controls to a label, a reference or a curve; "
           "type keyframes ('0: smile=0; 1.5: smile=0.8') to move them over time (they replace the sliders)."])
    load = g.node("SSERD_LoadVideo", (20, 0), ["sample.mp4", 0.0, 0.0, 0, 0.0, "image"])
    content = g.node("SSERD_DisentangleContent", (380, 0), [0])
    controls = g.node("SSERD_ExpressionControls", (700, 0),
                      [CONTROL_VALUES.get(name, 0.0) for name in CONTROL_NAMES] + ["", -1.0])
    g.link(load, "video", content, "video")
    g.link(content, "content", controls, "content")
    edit_chain(g, load, controls, prefix="sserd/expression_controls", content=content)
    return g.to_json()


def two_faces() -> dict:
    g = Graph()
    g.node("Note", (20, ROW2_Y), ["A different emotion for each face.\n\n"
           "1. Put a video with two people in ComfyUI/input and pick it in Load Video (SSERD) (this workflow names "
           "two_faces.mp4).\n"
           "2. One Disentangle Content per face: face_index 0 is the largest face on the first frame with faces, 1 "
           "the next. One Extract Emotion per face.\n"
           "3. Face 0 goes into Render Face as usual; face 1 goes through Add Face into Render Face's other_faces "
           "(chain another Add Face for a third face).\n\n"
           "Each face is edited on its own track; where one is not visible, the other is still edited."])
    load = g.node("SSERD_LoadVideo", (20, 0), ["two_faces.mp4", 0.0, 0.0, 0, 0.0, "image"])
    emotion = g.node("SSERD_ExtractEmotion", (700, 0), ["happy", 1.0, ""])
    edit_chain(g, load, emotion, prefix="sserd/two_faces")
    render = next(n for n in g.nodes if n["type"] == "SSERD_RenderFace")
    content = g.node("SSERD_DisentangleContent", (380, 470), [1], title="Disentangle Content (face 1)")
    emotion2 = g.node("SSERD_ExtractEmotion", (700, 470), ["sad", 1.0, ""], title="Extract Emotion (face 1)")
    add = g.node("SSERD_AddFace", (1040, 620))
    g.link(load, "video", content, "video")
    g.link(content, "content", add, "content")
    g.link(emotion2, "emotion", add, "emotion")
    g.link(add, "faces", render, "other_faces")
    return g.to_json()


WORKFLOWS = {"sserd_label_edit": label_edit, "sserd_cross_identity": cross_identity,
             "sserd_emotion_curve": emotion_curve, "sserd_two_faces": two_faces,
             "sserd_expression_controls": expression_controls}


def main() -> None:
    OUT.mkdir(exist_ok=True)
    for name, build in WORKFLOWS.items():
        (OUT / f"{name}.json").write_text(json.dumps(build(), indent=1) + "\n")
        print("wrote", OUT / f"{name}.json")


if __name__ == "__main__":
    main()
