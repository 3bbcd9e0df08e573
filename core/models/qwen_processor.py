"""An image-only Qwen2-VL processor, for installs where torchvision is missing.

transformers >= 5.4 builds ``Qwen2VLProcessor`` with a video processor, which needs torchvision;
without it, Qwen-Image-Edit cannot even encode its prompt. Editing never uses video, so this
subclass simply leaves the video half out. It is used only when ``import torchvision`` fails
(ComfyUI installs always have torchvision); everywhere else the stock processor runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from transformers import Qwen2VLProcessor
from transformers.processing_utils import ProcessorMixin

from ..data.availability import is_torchvision_available


class ImageOnlyQwen2VLProcessor(Qwen2VLProcessor):
    """``Qwen2VLProcessor`` without the video processor (same text and image behaviour)."""

    def __init__(self, image_processor: Any = None, tokenizer: Any = None, chat_template: Any = None,
                 **kwargs: Any) -> None:
        self.image_token = getattr(tokenizer, "image_token", "<|image_pad|>")
        self.video_token = getattr(tokenizer, "video_token", "<|video_pad|>")
        self.image_token_id = tokenizer.convert_tokens_to_ids(self.image_token)
        self.video_token_id = tokenizer.convert_tokens_to_ids(self.video_token)
        ProcessorMixin.__init__(self, image_processor, tokenizer, chat_template=chat_template)


def load_processor(folder: str | Path) -> Qwen2VLProcessor:
    """The stock processor when torchvision imports, else the image-only one."""
    if is_torchvision_available():
        return Qwen2VLProcessor.from_pretrained(str(folder))
    return ImageOnlyQwen2VLProcessor.from_pretrained(str(folder))
