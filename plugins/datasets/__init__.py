"""Built-in dataset plugins, one entry point each (implementations import lazily)."""

from polymodal import component

# Plugin objects end in ``_plugin``: a bare name like ``shapes`` would be overwritten
# by the submodule of the same name as soon as that submodule is imported (Python
# sets it as a package attribute), and the entry point would silently register nothing.

shapes_plugin = component("datasets", "shapes", "polymodal_plugins.datasets.shapes:ShapesDataset",
                   description="Embedded procedurally generated world: image, EN/ZH captions, audio, video, labels; zero-shot split.")
coco_captions_plugin = component("datasets", "coco-captions", "polymodal_plugins.datasets.coco_captions:CocoCaptions",
                          description="COCO-style captions: annotation JSON plus an image folder; references as targets.")
image_folder_plugin = component("datasets", "image-folder", "polymodal_plugins.datasets.image_folder:ImageFolder",
                         description="ImageFolder classification: root/<class>/<image>.")
manifest_plugin = component("datasets", "manifest", "polymodal_plugins.datasets.manifest:Manifest",
                     description="JSONL/CSV manifest with one column per modality plus label columns.")
clip_folder_plugin = component("datasets", "clip-folder", "polymodal_plugins.datasets.clip_folder:ClipFolder",
                        description="Folders of audio or video clips, optional class sub-folders and .txt captions.")
hf_datasets_plugin = component("datasets", "hf-datasets", "polymodal_plugins.datasets.hf_datasets:HFDataset",
                        description="Hugging Face datasets: a hub id or local parquet/arrow/imagefolder/audiofolder; "
                                    "columns to fields by feature type, ClassLabel names.")
speech_plugin = component("datasets", "speech", "polymodal_plugins.datasets.speech:SpeechDataset",
                          description="Speech recognition corpora: audio + transcript manifest, or the LibriSpeech layout.")
webdataset_plugin = component("datasets", "webdataset", "polymodal_plugins.datasets.webdataset:WebDatasetShards",
                              description="WebDataset-format sharded tars (key.jpg, key.txt, key.cls ...), indexed by "
                                          "tar headers for millions of samples.")
vqa_plugin = component("datasets", "vqa", "polymodal_plugins.datasets.vqa:VQADataset",
                       description="Visual questions with human answers: the VQAv2 questions + annotations pair, "
                                   "or a JSONL of image, question, answers.")
multiple_choice_plugin = component("datasets", "multiple-choice",
                                   "polymodal_plugins.datasets.multiple_choice:MultipleChoiceDataset",
                                   description="MMBench-like multiple choice (JSONL/TSV, options A-D, base64 or path "
                                               "images); circular = option rotations.")
