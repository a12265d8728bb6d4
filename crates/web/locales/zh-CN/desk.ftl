# 服务台（续）：附件、关联、关注人、自动关闭。
incident-attachments = 附件
incident-attachment-add = 添加附件
incident-attachment-limit = 最大 { $size }。图片和 PDF 在浏览器中打开，其他文件将被下载。
incident-action-attach = 上传
incident-children = 子工单
incident-merged = 已合并的重复工单
field-file = 文件
err-empty-file = 文件为空。
err-too-many = 每次只能上传一个文件。
nav-requests = 申请服务
request-title = 申请服务
request-submit = 提交申请
err-unknown-field = 表单中没有这一项。
