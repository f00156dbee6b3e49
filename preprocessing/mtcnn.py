"""MTCNN (Zhang et al. 2016) with facenet-pytorch's weights, without importing facenet-pytorch.

`import facenet_pytorch` imports torchvision for one NMS call, and torchvision's import pulls
in `torch._dynamo`: about 2 s of CPU, over 40% of `img2car caricature`'s cold start
(docs/DETECTION.md). Here the same three networks run on the weight files facenet-pytorch
ships (`facenet_pytorch/data/{p,r,o}net.pt`, found without importing the package), through
the same cascade as its `detect_face` (facenet-pytorch 2.5.3, MIT licence, Tim Esler), with
NMS done as torchvision's CPU kernel does it. Every tensor operation is the one
facenet-pytorch runs, in the same order on the same layouts, so scores, boxes and landmarks
are bit-identical (tests/test_mtcnn.py checks against facenet-pytorch itself).
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

THRESHOLDS = (0.6, 0.7, 0.7)   # P-, R- and O-net face probability (facenet-pytorch's defaults)
FACTOR = 0.709                 # pyramid step
NORM = 0.0078125               # (pixel - 127.5) / 128
BATCH = 512                    # R- and O-net crops per forward pass, as facenet-pytorch batches them


@dataclass(frozen=True)
class Detections:
    """Faces in one image, largest box first: boxes (N, 4) x1 y1 x2 y2, probs (N,),
    landmarks (N, 5, 2) (left eye, right eye, nose, left and right mouth corners); float64
    holding the network's float32 values."""

    boxes: np.ndarray
    probs: np.ndarray
    landmarks: np.ndarray


def weights_dir() -> Path:
    spec = importlib.util.find_spec("facenet_pytorch")  # locates the package without running its __init__
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("MTCNN's weights come with facenet-pytorch: pip install facenet-pytorch",
                                  name="facenet_pytorch")
    return Path(next(iter(spec.submodule_search_locations))) / "data"


class MTCNN:
    """The three networks, loaded once; `detect(rgb, min_face_size)` finds faces."""

    def __init__(self) -> None:
        folder = weights_dir()
        self.p, self.r, self.o = (_weights(folder / f"{name}.pt") for name in ("pnet", "rnet", "onet"))

    def detect(self, rgb: np.ndarray, min_face_size: float = 20.0) -> Detections:
        """An RGB uint8 (H, W, 3) photo -> its faces (facenet-pytorch's `MTCNN(keep_all=True)
        .detect(rgb, landmarks=True)`, with `min_face_size` as its attribute of that name)."""
        with torch.no_grad():
            boxes, points = _cascade(rgb, min_face_size, self)
        # facenet-pytorch hands its float32 results on as Python floats and orders them by an area
        # computed on those: the same here, so that even equal areas come out in its order.
        boxes, points = boxes.astype(object), points.astype(object)
        order = np.argsort((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1]))[::-1]  # largest first
        boxes, points = boxes[order].astype(np.float64), points[order].astype(np.float64)
        return Detections(boxes[:, :4], boxes[:, 4], points.reshape(-1, 5, 2))


# ---- the networks (facenet-pytorch's PNet, RNet, ONet as functions of their state dicts) ----

def _weights(path: Path) -> dict[str, torch.Tensor]:
    # contiguous, as in facenet-pytorch's modules once `load_state_dict` has copied them in
    return {k: v.contiguous() for k, v in torch.load(path, map_location="cpu", weights_only=True).items()}


def _block(x: torch.Tensor, w: dict, n: int, pool: tuple[int, int] | None) -> torch.Tensor:
    x = F.prelu(F.conv2d(x, w[f"conv{n}.weight"], w[f"conv{n}.bias"]), w[f"prelu{n}.weight"])
    return x if pool is None else F.max_pool2d(x, pool[0], pool[1], ceil_mode=True)


def _dense(x: torch.Tensor, w: dict, name: str) -> torch.Tensor:
    return F.linear(x, w[f"{name}.weight"], w[f"{name}.bias"])


def pnet(x: torch.Tensor, w: dict) -> tuple[torch.Tensor, torch.Tensor]:
    x = _block(_block(_block(x, w, 1, (2, 2)), w, 2, None), w, 3, None)
    probs = F.softmax(F.conv2d(x, w["conv4_1.weight"], w["conv4_1.bias"]), dim=1)
    return F.conv2d(x, w["conv4_2.weight"], w["conv4_2.bias"]), probs


def rnet(x: torch.Tensor, w: dict) -> tuple[torch.Tensor, torch.Tensor]:
    x = _block(_block(_block(x, w, 1, (3, 2)), w, 2, (3, 2)), w, 3, None)
    x = x.permute(0, 3, 2, 1).contiguous()
    x = F.prelu(_dense(x.view(x.shape[0], -1), w, "dense4"), w["prelu4.weight"])
    return _dense(x, w, "dense5_2"), F.softmax(_dense(x, w, "dense5_1"), dim=1)


def onet(x: torch.Tensor, w: dict) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x = _block(_block(_block(_block(x, w, 1, (3, 2)), w, 2, (3, 2)), w, 3, (2, 2)), w, 4, None)
    x = x.permute(0, 3, 2, 1).contiguous()
    x = F.prelu(_dense(x.view(x.shape[0], -1), w, "dense5"), w["prelu5.weight"])
    return _dense(x, w, "dense6_2"), _dense(x, w, "dense6_3"), F.softmax(_dense(x, w, "dense6_1"), dim=1)


def _batched(im_data: torch.Tensor, net, w: dict) -> tuple[torch.Tensor, ...]:
    out = [net(im_data[i:i + BATCH], w) for i in range(0, len(im_data), BATCH)]
    return tuple(torch.cat(v, dim=0) for v in zip(*out))


# ---- the cascade (facenet-pytorch's detect_face, for one image) ----

def _cascade(rgb: np.ndarray, minsize: float, nets: MTCNN) -> tuple[np.ndarray, np.ndarray]:
    imgs = torch.as_tensor(rgb.copy()).unsqueeze(0)
    imgs = imgs.permute(0, 3, 1, 2).type(torch.float32)  # channels-last strides, as facenet-pytorch has them
    h, w = imgs.shape[2:4]
    m = 12.0 / minsize
    minl = min(h, w) * m
    scales, scale = [], m
    while minl >= 12:
        scales.append(scale)
        scale, minl = scale * FACTOR, minl * FACTOR

    # First stage: P-net on every scale, NMS within each scale, then across scales
    boxes, picks, offset = [], [], 0
    for scale in scales:
        im_data = (F.interpolate(imgs, size=(int(h * scale + 1), int(w * scale + 1)), mode="area") - 127.5) * NORM
        reg, probs = pnet(im_data, nets.p)
        found = _windows(reg, probs[:, 1], scale, THRESHOLDS[0])
        boxes.append(found)
        picks.append(nms(found[:, :4], found[:, 4], 0.5) + offset)
        offset += found.shape[0]
    boxes = torch.cat(boxes, dim=0)[torch.cat(picks, dim=0)]
    boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]

    regw = boxes[:, 2] - boxes[:, 0]
    regh = boxes[:, 3] - boxes[:, 1]
    boxes = torch.stack([boxes[:, 0] + boxes[:, 5] * regw, boxes[:, 1] + boxes[:, 6] * regh,
                         boxes[:, 2] + boxes[:, 7] * regw, boxes[:, 3] + boxes[:, 8] * regh,
                         boxes[:, 4]]).permute(1, 0)
    boxes = _square(boxes)

    # Second stage: R-net on 24x24 crops
    if len(boxes) > 0:
        reg, probs = _batched(_crops(imgs, boxes, w, h, 24), rnet, nets.r)
        score = probs.permute(1, 0)[1, :]
        ipass = score > THRESHOLDS[1]
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        mv = reg.permute(1, 0)[:, ipass].permute(1, 0)
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes = _square(_regress(boxes[pick], mv[pick]))

    # Third stage: O-net on 48x48 crops, with the landmarks
    points = torch.zeros(0, 5, 2)
    if len(boxes) > 0:
        reg, marks, probs = _batched(_crops(imgs, boxes, w, h, 48), onet, nets.o)
        score = probs.permute(1, 0)[1, :]
        ipass = score > THRESHOLDS[2]
        points = marks.permute(1, 0)[:, ipass]
        boxes = torch.cat((boxes[ipass, :4], score[ipass].unsqueeze(1)), dim=1)
        mv = reg.permute(1, 0)[:, ipass].permute(1, 0)
        w_i = boxes[:, 2] - boxes[:, 0] + 1
        h_i = boxes[:, 3] - boxes[:, 1] + 1
        points_x = w_i.repeat(5, 1) * points[:5, :] + boxes[:, 0].repeat(5, 1) - 1
        points_y = h_i.repeat(5, 1) * points[5:10, :] + boxes[:, 1].repeat(5, 1) - 1
        points = torch.stack((points_x, points_y)).permute(2, 1, 0)
        boxes = _regress(boxes, mv)
        pick = torch.as_tensor(_nms_min(boxes[:, :4].numpy(), boxes[:, 4].numpy(), 0.7), dtype=torch.long)
        boxes, points = boxes[pick], points[pick]
    return boxes.numpy().copy(), points.numpy().copy()


def _windows(reg: torch.Tensor, probs: torch.Tensor, scale: float, thresh: float) -> torch.Tensor:
    """P-net's 12x12 windows scoring at least `thresh`: x1 y1 x2 y2 score, then 4 offsets."""
    stride, cellsize = 2, 12
    reg = reg.permute(1, 0, 2, 3)
    mask = probs >= thresh
    score = probs[mask]
    reg = reg[:, mask].permute(1, 0)
    bb = mask.nonzero()[:, 1:].type(reg.dtype).flip(1)
    q1 = ((stride * bb + 1) / scale).floor()
    q2 = ((stride * bb + cellsize - 1 + 1) / scale).floor()
    return torch.cat([q1, q2, score.unsqueeze(1), reg], dim=1)


def _regress(boxes: torch.Tensor, reg: torch.Tensor) -> torch.Tensor:
    """Moves each box by its predicted offsets (in place, as facenet-pytorch's `bbreg`)."""
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    b1 = boxes[:, 0] + reg[:, 0] * w
    b2 = boxes[:, 1] + reg[:, 1] * h
    b3 = boxes[:, 2] + reg[:, 2] * w
    b4 = boxes[:, 3] + reg[:, 3] * h
    boxes[:, :4] = torch.stack([b1, b2, b3, b4]).permute(1, 0)
    return boxes


def _square(boxes: torch.Tensor) -> torch.Tensor:
    """Each box grown to a square of its longer side, same centre (in place, as `rerec`)."""
    h = boxes[:, 3] - boxes[:, 1]
    w = boxes[:, 2] - boxes[:, 0]
    side = torch.max(w, h)
    boxes[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    boxes[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    boxes[:, 2:4] = boxes[:, :2] + side.repeat(2, 1).permute(1, 0)
    return boxes


def _crops(imgs: torch.Tensor, boxes: torch.Tensor, w: int, h: int, size: int) -> torch.Tensor:
    """Each box's pixels (clipped to the image, 1-based as in facenet-pytorch), resized to size x size."""
    b = boxes.trunc().int().numpy()
    x, y, ex, ey = b[:, 0], b[:, 1], b[:, 2], b[:, 3]
    x[x < 1] = 1
    y[y < 1] = 1
    ex[ex > w] = w
    ey[ey > h] = h
    # imgs[0, ...].unsqueeze(0): the strides facenet-pytorch's crops have (the resize follows them)
    im_data = [F.interpolate(imgs[0, :, (y[k] - 1):ey[k], (x[k] - 1):ex[k]].unsqueeze(0), size=(size, size),
                             mode="area") for k in range(len(y)) if ey[k] > (y[k] - 1) and ex[k] > (x[k] - 1)]
    return (torch.cat(im_data, dim=0) - 127.5) * NORM


# ---- non-maximum suppression ----

def nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """torchvision's `batched_nms` for boxes of one image, computed as its CPU kernel does:
    highest score first (ties: lower index), drop every later box whose IoU with a kept one is
    over `threshold`; float32 arithmetic, the comparison in float64. Kept indices, best first."""
    if boxes.numel() == 0:
        return torch.empty((0,), dtype=torch.int64)
    order = scores.sort(stable=True, dim=0, descending=True)[1]
    b = boxes[order].numpy()
    x1, y1, x2, y2 = (np.ascontiguousarray(b[:, k]) for k in range(4))
    areas = (x2 - x1) * (y2 - y1)
    suppressed = np.zeros(len(b), dtype=bool)
    keep = []
    with np.errstate(invalid="ignore", divide="ignore"):  # two empty boxes: 0/0 is NaN, never over
        for i in range(len(b)):
            if suppressed[i]:
                continue
            keep.append(i)
            w = np.maximum(np.float32(0), np.minimum(x2[i], x2[i + 1:]) - np.maximum(x1[i], x1[i + 1:]))
            h = np.maximum(np.float32(0), np.minimum(y2[i], y2[i + 1:]) - np.maximum(y1[i], y1[i + 1:]))
            inter = w * h
            ovr = inter / (areas[i] + areas[i + 1:] - inter)
            suppressed[i + 1:] |= ovr.astype(np.float64) > threshold
    keep = order[torch.as_tensor(keep, dtype=torch.int64)]
    if boxes.numel() > 4000:  # torchvision switches to NMS per image, whose output it sorts again
        keep = keep.sort()[0]
        keep = keep[scores[keep].sort(descending=True)[1]]
    return keep


def _nms_min(boxes: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """facenet-pytorch's last NMS: overlap over the smaller box's area (+1 pixel sizes)."""
    x1, y1, x2, y2 = (boxes[:, k].copy() for k in range(4))
    area = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(scores)
    pick = []
    while order.size > 0:
        i = order[-1]
        pick.append(i)
        rest = order[0:-1]
        w = np.maximum(0.0, np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + 1)
        order = rest[np.where(w * h / np.minimum(area[i], area[rest]) <= threshold)]
    return np.array(pick, dtype=np.int64)
